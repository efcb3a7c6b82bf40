package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is an io.Writer safe to read while the server writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeMountsMLflow: `atrium serve` answers the tracking and registry APIs.
func TestServeMountsMLflow(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--repo", t.TempDir(), "--addr", "127.0.0.1:0"}, io.Discard, &stderr)
	}()
	defer func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("serve exited with %d: %s", code, stderr.String())
		}
	}()
	addrRE := regexp.MustCompile(`atrium serving on (http://\S+)`)
	var base string
	for deadline := time.Now().Add(20 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := addrRE.FindStringSubmatch(stderr.String()); m != nil {
			base = m[1]
		}
	}
	if base == "" {
		t.Fatalf("serve did not start: %s", stderr.String())
	}
	for path, want := range map[string]string{
		"/api/2.0/mlflow/experiments/get?experiment_id=0":           `"name":"Default"`,
		"/ajax-api/2.0/mlflow/registered-models/search":             `"registered_models":[]`,
		"/api/2.0/mlflow/registered-models/get?name=none":           `RESOURCE_DOES_NOT_EXIST`,
		"/api/3.0/mlflow/server-info":                               `"store_type":"SqlStore"`,
		"/api/2.0/mlflow/metrics/get-history?run_id=x&metric_key=m": `Run with id=x not found`,
	} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !json.Valid(body) || !strings.Contains(string(body), want) {
			t.Errorf("GET %s = %d %s, want %s", path, resp.StatusCode, body, want)
		}
	}
}
