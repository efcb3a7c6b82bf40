package security

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeRedis is the least of a Redis server `atrium serve` needs to start on
// an online store of redis:// (RESP3: HELLO, PING, CLUSTER refused, HMGET
// and HGET finding nothing, HSETNX setting), which the test can make stop answering, as a
// paused or partitioned Redis would: then the server's answers are its
// 5xx, which must carry a request id and none of the driver's words.
type fakeRedis struct {
	ln     net.Listener
	silent atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func newFakeRedis(t *testing.T) *fakeRedis {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRedis{ln: ln}
	go f.accept()
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, c := range f.conns {
			c.Close()
		}
	})
	return f
}

// URL is the store URL of the fake.
func (f *fakeRedis) URL() string { return "redis://" + f.ln.Addr().String() }

// Silence makes the fake read commands and answer none, on every
// connection, open or new.
func (f *fakeRedis) Silence() { f.silent.Store(true) }

func (f *fakeRedis) accept() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns = append(f.conns, c)
		f.mu.Unlock()
		go f.serve(c)
	}
}

// serve answers the commands of one connection until it closes.
func (f *fakeRedis) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		cmd, args, err := readCommand(r)
		if err != nil {
			return
		}
		if f.silent.Load() {
			continue
		}
		var reply string
		switch strings.ToUpper(cmd) {
		case "HELLO":
			reply = "%3\r\n+server\r\n+redis\r\n+version\r\n+7.2.0\r\n+proto\r\n:3\r\n"
		case "PING":
			reply = "+PONG\r\n"
		case "CLIENT", "SELECT", "AUTH":
			reply = "+OK\r\n"
		case "CLUSTER": // how a client tells a single node from a cluster
			reply = "-ERR This instance has cluster support disabled\r\n"
		case "HMGET": // HMGET key field...: one null per field
			reply = "*" + strconv.Itoa(args-2) + "\r\n" + strings.Repeat("_\r\n", args-2)
		case "HSETNX":
			reply = ":1\r\n"
		default:
			reply = "_\r\n" // nothing stored
		}
		if _, err := io.WriteString(c, reply); err != nil {
			return
		}
	}
}

// readCommand reads one RESP array of bulk strings and returns its first
// element (the command's name) and its length.
func readCommand(r *bufio.Reader) (string, int, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", 0, err
	}
	if !strings.HasPrefix(line, "*") {
		return "", 0, fmt.Errorf("fake redis: not an array: %q", line)
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil {
		return "", 0, err
	}
	var name string
	for i := range n {
		head, err := r.ReadString('\n')
		if err != nil {
			return "", 0, err
		}
		size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
		if err != nil {
			return "", 0, err
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", 0, err
		}
		if i == 0 {
			name = string(buf[:size])
		}
	}
	return name, n, nil
}
