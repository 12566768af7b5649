package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
)

var restartObjects = flag.Int("restart.objects", 1_000_000, "objects BenchmarkRestart stores before measuring a restart")

// dirBytes is the size of the files under dir.
func dirBytes(b *testing.B, dir string) int64 {
	b.Helper()
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// nearDuplicates is a set of versions of one 32 MiB file, each made from
// the one before by a few edits: bytes inserted, overwritten and cut at
// random places (a document or video re-exported after small changes).
func nearDuplicates(versions int) [][]byte {
	r := rand.New(rand.NewPCG(5, 6))
	cur := make([]byte, 32<<20)
	rand.NewChaCha8([32]byte{5}).Read(cur)
	out := [][]byte{bytes.Clone(cur)}
	for range versions - 1 {
		for range 4 {
			at := r.IntN(len(cur))
			switch r.IntN(3) {
			case 0: // insert
				ins := make([]byte, 1+r.IntN(4096))
				rand.NewChaCha8([32]byte{byte(r.Uint32())}).Read(ins)
				cur = append(cur[:at:at], append(ins, cur[at:]...)...)
			case 1: // overwrite
				for i := at; i < min(len(cur), at+1+r.IntN(4096)); i++ {
					cur[i] = byte(r.Uint32())
				}
			case 2: // cut
				cur = append(cur[:at:at], cur[min(len(cur), at+1+r.IntN(4096)):]...)
			}
		}
		out = append(out, bytes.Clone(cur))
	}
	return out
}

// BenchmarkDedupNearDuplicates stores 16 versions of a 32 MiB file, each
// a few edits away from the one before, and reports what reached the
// disk against what clients stored.
func BenchmarkDedupNearDuplicates(b *testing.B) {
	files := nearDuplicates(16)
	var logical int64
	for _, f := range files {
		logical += int64(len(f))
	}
	b.SetBytes(logical)
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		e, err := engine.Open(dir, engine.Options{MinFreeBytes: -1, Logger: enginetest.Logger(b)})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for i, f := range files {
			k := engine.Key{Namespace: "bench", Tenant: "t", Name: fmt.Sprint("v", i)}
			if _, err := e.PutRecord(context.Background(), k, bytes.NewReader(f), engine.Write{}); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		st, err := e.Stats()
		if err != nil {
			b.Fatal(err)
		}
		e.Close()
		b.ReportMetric(float64(logical)/float64(st.ChunkDisk), "dedup_ratio")
		b.ReportMetric(float64(st.ChunkDisk)/(1<<20), "disk_MiB")
		b.ReportMetric(float64(dirBytes(b, dir))/(1<<20), "dir_MiB")
		b.ReportMetric(float64(logical)/(1<<20), "logical_MiB")
		b.StartTimer()
	}
}

// fillTiny stores n records of 16 distinct bytes each from 64 writers
// and returns the store's folder, closed.
func fillTiny(b *testing.B, n int) string {
	b.Helper()
	dir := b.TempDir()
	e, err := engine.Open(dir, engine.Options{MinFreeBytes: -1, Logger: enginetest.Logger(b)})
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	const writers = 64
	for w := range writers {
		wg.Go(func() {
			var body [16]byte
			for i := w; i < n; i += writers {
				binary.LittleEndian.PutUint64(body[:], uint64(i))
				binary.LittleEndian.PutUint64(body[8:], 0x5eed)
				k := engine.Key{Namespace: "bench", Tenant: "t", Name: fmt.Sprintf("obj/%08d", i)}
				if _, err := e.PutRecord(context.Background(), k, bytes.NewReader(body[:]), engine.Write{ContentType: "application/octet-stream"}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := e.Close(); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkIndexBytesPerObject stores 10^5 small objects and reports the
// index's size on disk per object (record, blob, chunk and location
// entries, after Pebble's compression).
func BenchmarkIndexBytesPerObject(b *testing.B) {
	const n = 100_000
	for range b.N {
		dir := fillTiny(b, n)
		b.ReportMetric(float64(dirBytes(b, filepath.Join(dir, "index")))/n, "index_bytes/object")
	}
}

// BenchmarkRestart measures opening a store of -restart.objects objects
// (10^6 by default; filling it takes minutes, so run it alone:
// go test ./bench -run '^$' -bench Restart -benchtime 5x).
func BenchmarkRestart(b *testing.B) {
	n := *restartObjects
	start := time.Now()
	dir := fillTiny(b, n) // once: the sub-benchmark runs more than once
	b.Logf("stored %d objects in %v", n, time.Since(start).Round(time.Second))
	b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
		for range b.N {
			e, err := engine.Open(dir, engine.Options{MinFreeBytes: -1, Logger: enginetest.Logger(b)})
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if _, err := e.GetRecord(engine.Key{Namespace: "bench", Tenant: "t", Name: fmt.Sprintf("obj/%08d", n-1)}); err != nil {
				b.Fatal(err)
			}
			e.Close()
			b.StartTimer()
		}
	})
}
