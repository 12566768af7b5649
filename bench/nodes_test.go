package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/testtool"
)

// BenchmarkNodes is the throughput of one store served by 1, 2 and 3
// `cairn serve` processes at once (the index in PostgreSQL, the segments
// in MinIO), 8 clients over loopback spreading their requests over the
// nodes in turn, through the cloud storage API: PUT of 4 KiB (kept in
// the index) and 256 KiB (a segment object per group commit), and GET of
// 4 KiB. Besides ops/s it reports the CPU per request of a node
// (node-cpu-µs/op: each node's CPU over the requests it served, averaged
// over the nodes) and of PostgreSQL (pg-cpu-µs/op). This machine has two
// cores, which clients, nodes, PostgreSQL and MinIO share: more nodes
// cannot add cores, so read the figures as what a node costs per
// request, and whether that grows with the nodes beside it.
func BenchmarkNodes(b *testing.B) {
	bin := testtool.Cairn(b)
	m := testtool.StartMinIO(b)
	pg := testtool.SharedPostgres(b)
	for _, n := range []int{1, 2, 3} {
		env := append(os.Environ(), m.Env()...)
		env = append(env, "CAIRN_INDEX="+pg.NewDatabase(b))
		store := fmt.Sprintf("s3://%s/nodes%d", m.Bucket, n)
		dirs := make([]string, n)
		for i := range dirs {
			dirs[i] = filepath.Join(b.TempDir(), fmt.Sprint("node", i))
		}
		run := func(args ...string) string {
			cmd := exec.Command(bin, args...)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if err != nil {
				b.Fatalf("cairn %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			return string(out)
		}
		run("init", "--data", dirs[0], "--store", store)
		key := filepath.Join(b.TempDir(), "secret.key")
		k, err := os.ReadFile(filepath.Join(dirs[0], "secret.key"))
		if err != nil {
			b.Fatal(err)
		}
		os.WriteFile(key, k, 0o600)
		run("user", "add", "bench", "--data", dirs[0])
		run("user", "grant", "bench", "1", "WRITE", "--data", dirs[0])
		token := strings.TrimSpace(run("user", "token", "bench", "--ttl", "24h", "--data", dirs[0]))
		nodes := make([]*benchNode, n)
		for i, d := range dirs {
			nodes[i] = startNode(b, bin, env, "serve", "--data", d, "--store", store, "--key-file", key,
				"--listen", "127.0.0.1:0", "--metrics-listen", "", "--log-level", "warn",
				"--gc-interval", "0", "--scrub-interval", "0", "--min-free-bytes", "-1", "--hide-dedup-timing=false")
		}
		tr := &http.Transport{MaxIdleConnsPerHost: 64}
		b.Cleanup(tr.CloseIdleConnections)
		hc := &http.Client{Transport: tr}
		var seq atomic.Uint64
		do := func(b *testing.B, method, name string, body []byte, want int) {
			i := seq.Add(1)
			node := nodes[i%uint64(n)]
			node.served.Add(1)
			var rd io.Reader
			if body != nil {
				rd = bytes.NewReader(body)
			}
			req, _ := http.NewRequest(method, node.url+"/public/1/"+name, rd)
			req.Header.Set("Authorization", "Bearer "+token)
			res, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != want {
				b.Errorf("%s %s on %s: %d, want %d", method, name, node.url, res.StatusCode, want)
			}
		}
		measure := func(b *testing.B, op func(b *testing.B)) {
			for _, nd := range nodes {
				nd.served.Store(0)
				nd.cpu0 = testtool.ProcessCPU(nd.pid())
			}
			pg0 := pg.CPU()
			b.SetParallelism(4) // 8 clients on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					op(b)
				}
			})
			b.StopTimer()
			var per float64
			for _, nd := range nodes {
				used := testtool.ProcessCPU(nd.pid()) - nd.cpu0
				per += float64(used.Microseconds()) / float64(max(1, nd.served.Load()))
			}
			b.ReportMetric(per/float64(n), "node-cpu-µs/op")
			b.ReportMetric(float64((pg.CPU()-pg0).Microseconds())/float64(b.N), "pg-cpu-µs/op")
		}
		var names atomic.Uint64 // across the runs of each benchmark
		for _, size := range []int{4 << 10, 256 << 10} {
			body := make([]byte, size)
			for i := range body {
				body[i] = byte(i * 7)
			}
			b.Run(fmt.Sprintf("op=PUT/size=%dKiB/nodes=%d", size>>10, n), func(b *testing.B) {
				b.SetBytes(int64(size))
				measure(b, func(b *testing.B) {
					// Distinct bytes, so that nothing is deduplicated.
					p := append([]byte(nil), body...)
					id := names.Add(1)
					copy(p, fmt.Sprintf("%d/%d/", size, id))
					do(b, "POST", fmt.Sprintf("p%d-%d", size, id), p, 201)
				})
			})
		}
		body := make([]byte, 4<<10)
		for i := range 64 {
			copy(body, fmt.Sprintf("get %d", i))
			do(b, "POST", fmt.Sprintf("g%d", i), body, 201)
		}
		b.Run(fmt.Sprintf("op=GET/size=4KiB/nodes=%d", n), func(b *testing.B) {
			b.SetBytes(4 << 10)
			var i atomic.Uint64
			measure(b, func(b *testing.B) { do(b, "GET", fmt.Sprintf("g%d", i.Add(1)%64), nil, 200) })
		})
		for _, nd := range nodes {
			nd.stop()
		}
	}
}

type benchNode struct {
	cmd    *exec.Cmd
	url    string
	served atomic.Uint64
	cpu0   time.Duration
	logs   bytes.Buffer
	done   chan struct{}
}

func (n *benchNode) pid() int { return n.cmd.Process.Pid }

func (n *benchNode) stop() {
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		n.cmd.Process.Kill()
		<-n.done
	}
}

// startNode starts `cairn serve` and waits for the address it serves.
func startNode(b *testing.B, bin string, env []string, args ...string) *benchNode {
	n := &benchNode{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	n.cmd.Env = env
	n.cmd.Stderr = &n.logs
	out, err := n.cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() { n.cmd.Wait(); close(n.done) }()
	b.Cleanup(n.stop)
	line, _ := bufio.NewReader(out).ReadString('\n')
	const prefix = "cairn: serving "
	if !strings.HasPrefix(line, prefix) {
		b.Fatalf("serve printed %q:\n%s", line, n.logs.String())
	}
	n.url = strings.TrimSuffix(strings.Fields(strings.TrimPrefix(line, prefix))[0], "/")
	go io.Copy(io.Discard, out)
	return n
}
