package security

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/goccy/go-yaml"
)

// script is testdata/probes.yaml: what must survive the probes, and the
// probes, in order (later probes may rely on earlier ones having been
// refused).
type script struct {
	// Survivors are named reads, each run after every probe that names it
	// in survives: the object an attacker aimed at is still there, intact.
	Survivors map[string]Request `yaml:"survivors"`
	Probes    []probe            `yaml:"probes"`
}

// Request is one HTTP call of the script. Every string is a text/template
// over vars (see fixture) with the functions repeat and basic.
type Request struct {
	// Target is the server: main (default; authentication on, OIDC, grants,
	// default_permission NO_PERMISSIONS) or open (loopback, no credential).
	Target string `yaml:"target"`
	// As names the credential sent as Authorization (vars.Cred); empty:
	// none, or whatever Headers set.
	As      string            `yaml:"as"`
	Method  string            `yaml:"method"`
	Path    string            `yaml:"path"`
	Host    string            `yaml:"host"` // the Host header; default the server's address
	Headers map[string]string `yaml:"headers"`
	Body    string            `yaml:"body"` // sent as application/json unless Headers name a Content-Type
	// Send is how the body goes: "" whole, with its length; "headers-only":
	// announce content_length and send no byte of it; "chunked": the body
	// then padding up to stream_mib MiB, without a length; "trickle": the
	// body one byte every 100 ms.
	Send          string `yaml:"send"`
	ContentLength int64  `yaml:"content_length"`
	StreamMiB     int    `yaml:"stream_mib"`
	// HeaderFlood adds that many headers of 64 bytes each.
	HeaderFlood int `yaml:"header_flood"`
	// Status is the answer expected: one code or a list; 0 stands for a
	// connection the server closed without an answer.
	Status statusSet `yaml:"status"`
	// Contains must each appear in the answer's body.
	Contains []string `yaml:"contains"`
	// Absent must not appear in the answer (headers or body).
	Absent []string `yaml:"absent"`
	// RequestIDInBody: the body names the answer's X-Request-Id.
	RequestIDInBody bool `yaml:"request_id_in_body"`
	// Audited: its server's audit log holds the call (found by the
	// answer's X-Request-Id with `atrium audit` once the server stopped).
	Audited bool `yaml:"audited"`
}

// probe is a request made as an attacker, with what must survive it.
type probe struct {
	Name    string `yaml:"name"`
	Request `yaml:",inline"`
	// Survives names survivors read after the probe.
	Survives []string `yaml:"survives"`
}

// statusSet is one status code or a list of acceptable ones.
type statusSet []int

func (s *statusSet) UnmarshalYAML(unmarshal func(any) error) error {
	var one int
	if err := unmarshal(&one); err == nil {
		*s = statusSet{one}
		return nil
	}
	var many []int
	if err := unmarshal(&many); err != nil {
		return fmt.Errorf("status: want a code or a list of codes: %w", err)
	}
	*s = many
	return nil
}

func loadScript(t *testing.T, file string) script {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var s script
	if err := yaml.UnmarshalWithOptions(data, &s, yaml.Strict()); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	for i, p := range s.Probes {
		if p.Name == "" || p.Method == "" || p.Path == "" || len(p.Status) == 0 {
			t.Fatalf("%s: probe %d (%q) needs a name, method, path and status", file, i+1, p.Name)
		}
		for _, name := range p.Survives {
			if _, ok := s.Survivors[name]; !ok {
				t.Fatalf("%s: probe %q: no survivor %q", file, p.Name, name)
			}
		}
	}
	return s
}

// answer is what a request got back.
type answer struct {
	status int // 0: the connection closed without an answer
	header http.Header
	body   string
}

// text is the answer as an attacker reads it: headers and body.
func (a answer) text() string {
	var b strings.Builder
	_ = a.header.Write(&b)
	b.WriteString("\n")
	b.WriteString(a.body)
	return b.String()
}

// runner sends the script's requests to the fixture's servers.
type runner struct {
	f      *fixture
	funcs  template.FuncMap
	client *http.Client
}

// expand executes s as a template over the fixture's vars.
func (r *runner) expand(t *testing.T, s string) string {
	t.Helper()
	if !strings.Contains(s, "{{") {
		return s
	}
	tmpl, err := template.New("").Option("missingkey=error").Funcs(r.funcs).Parse(s)
	if err != nil {
		t.Fatalf("template %q: %v", s, err)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, r.f.vars); err != nil {
		t.Fatalf("template %q: %v", s, err)
	}
	return b.String()
}

// check sends q and returns every way its answer breaks q's expectations.
func (r *runner) check(t *testing.T, q Request) (answer, []string) {
	t.Helper()
	a, err := r.send(t, q)
	if err != nil {
		return a, []string{err.Error()}
	}
	var bad []string
	if !slices.Contains(q.Status, a.status) {
		bad = append(bad, fmt.Sprintf("status %d, want %v", a.status, []int(q.Status)))
	}
	for _, s := range q.Contains {
		if s = r.expand(t, s); !strings.Contains(a.body, s) {
			bad = append(bad, fmt.Sprintf("body lacks %q", cut(s)))
		}
	}
	text := a.text()
	for _, s := range q.Absent {
		if s = r.expand(t, s); strings.Contains(text, s) {
			bad = append(bad, fmt.Sprintf("answer shows %q", cut(s)))
		}
	}
	// Whatever the probe, no answer may carry a secret: a token, a
	// password, or what the server stores of them.
	for what, s := range r.f.secrets {
		if strings.Contains(text, s) {
			bad = append(bad, "answer shows "+what)
		}
	}
	// Nor may any make the server fetch a URL a client gave it (SSRF).
	if n := r.f.canaryHits.Load(); n > 0 {
		bad = append(bad, fmt.Sprintf("the server fetched the canary URL %d times", n))
	}
	if q.RequestIDInBody {
		if id := a.header.Get("X-Request-Id"); id == "" || !strings.Contains(a.body, id) {
			bad = append(bad, fmt.Sprintf("body does not name the request id %q", id))
		}
	}
	return a, bad
}

// cut shortens what a failure message quotes.
func cut(s string) string {
	if len(s) > 300 {
		return fmt.Sprintf("%s... (%d bytes)", s[:300], len(s))
	}
	return s
}

// send makes q's call.
func (r *runner) send(t *testing.T, q Request) (answer, error) {
	t.Helper()
	srv := r.f.main
	if q.Target == "open" {
		srv = r.f.open
	} else if q.Target != "" && q.Target != "main" {
		t.Fatalf("target %q: want main or open", q.Target)
	}
	method, path, body := q.Method, r.expand(t, q.Path), r.expand(t, q.Body)
	hdr := http.Header{}
	hdr.Set("Host", srv.Addr)
	if q.Host != "" {
		hdr.Set("Host", r.expand(t, q.Host))
	}
	if body != "" || q.Send != "" {
		hdr.Set("Content-Type", "application/json")
	}
	if q.As != "" {
		cred, ok := r.f.vars.Cred[q.As]
		if !ok {
			t.Fatalf("as %q: no such credential", q.As)
		}
		hdr.Set("Authorization", cred)
	}
	for k, v := range q.Headers {
		hdr.Set(k, r.expand(t, v))
	}
	for i := range q.HeaderFlood {
		hdr.Set(fmt.Sprintf("X-Flood-%05d", i), strings.Repeat("f", 64))
	}
	switch q.Send {
	case "":
		return r.do(srv, method, path, hdr, strings.NewReader(body), int64(len(body)))
	case "chunked":
		pad := int64(q.StreamMiB)<<20 - int64(len(body))
		return r.do(srv, method, path, hdr, io.MultiReader(strings.NewReader(body), io.LimitReader(repeatReader('a'), max(pad, 0))), -1)
	case "headers-only":
		hdr.Set("Content-Length", fmt.Sprint(q.ContentLength))
		return raw(srv.Addr, method, path, hdr, "", 0)
	case "trickle":
		hdr.Set("Content-Length", fmt.Sprint(len(body)))
		return raw(srv.Addr, method, path, hdr, body, 100*time.Millisecond)
	}
	t.Fatalf("send %q: want headers-only, chunked or trickle", q.Send)
	return answer{}, nil
}

// do sends a request with the HTTP client; length -1 sends the body
// chunked.
func (r *runner) do(srv *serverProc, method, path string, hdr http.Header, body io.Reader, length int64) (answer, error) {
	if length == 0 {
		body = nil
	}
	req, err := http.NewRequest(method, srv.URL+path, body)
	if err != nil {
		return answer{}, err
	}
	req.Host = hdr.Get("Host")
	hdr.Del("Host")
	req.Header = hdr
	req.ContentLength = length
	resp, err := r.client.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: %w", method, cut(path), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: reading the answer: %w", method, cut(path), err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}, nil
}

// raw writes a request on its own connection: its headers, then body one
// byte every step (all at once when step is 0), then reads the answer. A
// connection the server closes before answering gives status 0. The
// connection's deadline only bounds a hung test: a server that takes the
// trickled body whole answers, and the probe fails on its status.
func raw(addr, method, path string, hdr http.Header, body string, step time.Duration) (answer, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return answer{}, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Minute))
	var head bytes.Buffer
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, hdr.Get("Host"))
	hdr.Del("Host")
	_ = hdr.Write(&head)
	head.WriteString("\r\n")
	if _, err := conn.Write(head.Bytes()); err != nil {
		return answer{}, err
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			answered <- answer{header: http.Header{}}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		answered <- answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
	}()
	for i := 0; i < len(body); i++ {
		select {
		case a := <-answered:
			return a, nil
		case <-time.After(step):
		}
		if _, err := conn.Write([]byte{body[i]}); err != nil {
			break // the server cut the connection: its answer, if any, follows
		}
	}
	a := <-answered
	return a, nil
}

// repeatReader reads as an endless run of one byte.
type repeatReader byte

func (b repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}
