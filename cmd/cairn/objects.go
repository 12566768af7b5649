package main

import (
	"context"
	"fmt"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/objstore"
)

// openObjects opens the bucket a --store URL names (nil for "", a store on
// local disk), found as the AWS SDKs find it: see objstore.FromEnv.
func openObjects(ctx context.Context, store string, e *env) (engine.Objects, error) {
	if store == "" {
		return nil, nil
	}
	cfg, err := objstore.FromEnv(store, e.s3Endpoint, e.getenv)
	if err != nil {
		return nil, fmt.Errorf("--store: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	b, err := objstore.Open(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("--store: %w", err)
	}
	return b, nil
}
