package records_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
	"github.com/cairnstore/cairn/server/internal/records"
)

type thing struct {
	Name string `json:"name"`
	N    int    `json:"n"`
}

var (
	errNo     = errors.New("no such thing")
	errExists = errors.New("thing exists")
)

// TestStore: a missing record is the store's sentinel, a taken name on
// Add its other one, metadata that does not decode engine.ErrCorrupt;
// Update reads and writes in one transaction.
func TestStore(t *testing.T) {
	ctx := context.Background()
	e := enginetest.Open(t, engine.Options{})
	s := records.Store[thing]{Engine: e, Namespace: "test.things", What: "thing", Missing: errNo, Exists: errExists}
	if _, err := s.Get("", "a"); !errors.Is(err, errNo) {
		t.Fatalf("Get of a missing thing: %v", err)
	}
	if err := s.Add(ctx, "", "a", thing{"a", 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(ctx, "", "a", thing{"a", 2}); !errors.Is(err, errExists) {
		t.Fatalf("Add of a taken name: %v", err)
	}
	if err := s.Add(ctx, "", "b", thing{"b", 2}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Update(ctx, "", "a", func(v *thing) error { v.N += 10; return nil })
	if err != nil || got.N != 11 {
		t.Fatalf("Update = %+v, %v", got, err)
	}
	if _, err := s.Update(ctx, "", "zz", func(*thing) error { return nil }); !errors.Is(err, errNo) {
		t.Fatalf("Update of a missing thing: %v", err)
	}
	all, err := s.List("")
	if err != nil || !slices.Equal(all, []thing{{"a", 11}, {"b", 2}}) {
		t.Fatalf("List = %+v, %v", all, err)
	}
	if err := s.Delete(ctx, "", "b"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "", "b"); !errors.Is(err, errNo) {
		t.Fatalf("Delete of a missing thing: %v", err)
	}
	// Bytes that do not decode are corruption, wherever they are read.
	err = e.Update(ctx, func(tx *engine.Tx) error {
		_, err := tx.Put(s.Key("", "bad"), engine.Record{Meta: []byte("{not json")}, nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("", "bad"); !errors.Is(err, engine.ErrCorrupt) {
		t.Fatalf("Get of bad metadata: %v", err)
	}
	if _, err := s.List(""); !errors.Is(err, engine.ErrCorrupt) {
		t.Fatalf("List over bad metadata: %v", err)
	}
}
