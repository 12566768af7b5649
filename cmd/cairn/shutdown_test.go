package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDrainAndJSONLogs: with --drain-delay, a server told to stop answers
// /readyz 503 for that long while still taking requests (a load balancer
// sees it leave before its listener closes), then stops; --log-format
// json writes one JSON object a line.
func TestDrainAndJSONLogs(t *testing.T) {
	const drain = 1500 * time.Millisecond
	data := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
			"--log-format", "json", "--drain-delay", drain.String()}, noEnv, pw, &logs)
		pw.CloseWithError(err)
		done <- err
	}()
	br := bufio.NewReader(pr)
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("serve did not start: %v", err)
	}
	mline, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("serve did not print its metrics address: %v", err)
	}
	go io.Copy(io.Discard, br)
	base := strings.TrimSuffix(strings.Fields(strings.TrimPrefix(line, "cairn: serving "))[0], "/")
	metrics := strings.TrimSuffix(strings.TrimSpace(strings.TrimPrefix(mline, "cairn: metrics at ")), "/metrics")
	status := func(url string) int {
		res, err := http.Get(url)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := status(metrics + "/readyz"); got != 200 {
		t.Fatalf("/readyz before shutdown: %d", got)
	}

	stopped := time.Now()
	cancel()
	// Draining: not ready, still serving new connections.
	deadline := time.Now().Add(drain / 2)
	for status(metrics+"/readyz") != 503 {
		if time.Now().After(deadline) {
			t.Fatal("/readyz is not 503 while draining")
		}
	}
	if got := status(base + "/livez"); got != 200 {
		t.Fatalf("a new request while draining: %d", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if took := time.Since(stopped); took < drain {
		t.Errorf("serve stopped %v after it was told to, before --drain-delay %v", took, drain)
	}

	n := 0
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec struct{ Msg string }
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec.Msg == "" {
			t.Fatalf("a log line is not a JSON record: %q (%v)", l, err)
		}
		n++
	}
	if n < 2 || !strings.Contains(logs.String(), `"msg":"serving"`) {
		t.Errorf("the JSON log has %d lines: %s", n, logs.String())
	}
}
