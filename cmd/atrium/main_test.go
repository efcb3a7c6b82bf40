package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// atrium runs the CLI in-process and returns its exit code, stdout and stderr.
func atrium(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// mustAtrium runs the CLI in-process on the project in dir and returns its
// stdout; the test fails when the command does.
func mustAtrium(t *testing.T, dir string, args ...string) string {
	t.Helper()
	code, out, errOut := atrium(t, append([]string{"--repo", dir}, args...)...)
	if code != exitOK {
		t.Fatalf("atrium %v = %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
	}
	return out
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		args       []string
		code       int
		stdout     string
		stderrPart string
	}{
		{[]string{"version"}, exitOK, "atrium ", ""},
		{[]string{"version", "extra"}, exitUsage, "", `version takes no arguments, got "extra"`},
		{[]string{"no-such-command"}, exitUsage, "", "unknown command"},
		{[]string{"version", "--no-such-flag"}, exitUsage, "", "unknown flag"},
		{[]string{"--output", "xml", "version"}, exitUsage, "", "--output \"xml\""},
	}
	for _, tt := range tests {
		code, out, errOut := atrium(t, tt.args...)
		if code != tt.code || !strings.Contains(out, tt.stdout) || !strings.Contains(errOut, tt.stderrPart) {
			t.Errorf("atrium %v = %d, stdout %q, stderr %q; want %d, %q, %q", tt.args, code, out, errOut, tt.code, tt.stdout, tt.stderrPart)
		}
	}
}
