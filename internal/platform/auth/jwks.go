package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// jwtAlgs are the signature algorithms a provider's tokens may use (those
// go-oidc verifies; never "none" nor HMAC, whose key would be public).
var jwtAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512,
	jose.PS256, jose.PS384, jose.PS512, jose.EdDSA}

// maxJWKS bounds the key set document read from the provider.
const maxJWKS = 1 << 20

// jwksFetchTimeout bounds a key fetch whatever the HTTP client's timeout: the
// fetch is shared by every request waiting for it, so it runs detached from
// any one request's context.
const jwksFetchTimeout = 30 * time.Second

// defaultKeyFetchInterval is the least time between two fetches of the key
// set. Forged tokens naming unknown keys cost nothing to make: without a
// floor each would fetch the provider's keys again, back to back (a load on
// the provider, which may rate-limit us into 503s during a real rotation).
// Providers publish a new key before they sign with it (OpenID Connect Core
// 10.1.1), so a floor of seconds delays no honest token for long.
const defaultKeyFetchInterval = 5 * time.Second

// keysUnavailableError is the failure to fetch the provider's keys: the
// token could not be checked, which is not the token's fault (503, not 401).
type keysUnavailableError struct{ err error }

func (e *keysUnavailableError) Error() string { return "jwks: keys unavailable: " + e.err.Error() }
func (e *keysUnavailableError) Unwrap() error { return e.err }

// fetchErrKey is the context key of the *error in which jwks.VerifySignature
// leaves a key fetch failure for OIDC.Verify: go-oidc's verifier formats the
// key set's error with %v, so its type does not survive the trip otherwise.
type fetchErrKey struct{}

// jwks is the key set of a provider's jwks_uri (an oidc.KeySet). It keeps the
// keys fetched last and fetches them again when a token names a key it does
// not hold (rotation needs no restart), one fetch at a time, shared by the
// requests that wait for it.
//
// It replaces go-oidc's RemoteKeySet, which releases the waiters of a fetch
// before it forgets that fetch: a request arriving in between joins the
// finished fetch and gets its result, keys fetched before the rotation (a
// valid token refused, 401) or the failure of a provider that is back up
// (503). Here a request refuses a token, or answers that the keys are
// unavailable, only on the result of a fetch that started after it found its
// key missing, and the fetch state changes under one lock.
type jwks struct {
	url    string
	client *http.Client
	// minInterval is the least time between the end of a fetch and the start
	// of the next: within it, the last fetch's result stands for a fresh one.
	minInterval time.Duration

	mu       sync.Mutex
	keys     []jose.JSONWebKey
	started  uint64 // fetches started
	current  *keyFetch
	previous *keyFetch // the fetch finished last
}

// keyFetch is one fetch of the key set; done is closed once keys and err are
// set and the fetch is the jwks's previous one.
type keyFetch struct {
	seq   uint64
	done  chan struct{}
	keys  []jose.JSONWebKey
	err   error
	ended time.Time
}

func newJWKS(url string, client *http.Client, minInterval time.Duration) *jwks {
	return &jwks{url: url, client: client, minInterval: minInterval}
}

// VerifySignature implements oidc.KeySet: it returns the payload of the JWS
// jwt once a key of the set verifies it. The verifier has checked the
// algorithm already.
func (j *jwks) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSigned(jwt, jwtAlgs)
	if err != nil {
		return nil, fmt.Errorf("malformed jwt: %v", err)
	}
	kid := ""
	if len(jws.Signatures) > 0 {
		kid = jws.Signatures[0].Header.KeyID
	}
	j.mu.Lock()
	keys, seen := j.keys, j.started
	j.mu.Unlock()
	if payload, ok := verifyWith(jws, kid, keys); ok {
		return payload, nil
	}
	if kid != "" && slices.ContainsFunc(keys, func(k jose.JSONWebKey) bool { return k.KeyID == kid }) {
		// A key held under that id refuses the signature: a rotation brings a
		// new id, so fetching again cannot help (and would let forged tokens
		// drive fetches).
		return nil, errors.New("the provider's key " + kid + " does not verify the signature")
	}
	// An unknown key: the provider may have rotated its keys
	// (https://openid.net/specs/openid-connect-core-1_0.html#RotateSigKeys).
	// Keys of any fetch may verify the token, but only a fetch that started
	// after this read may refuse it. Two rounds at most: once a fetch that
	// started before this read has ended, every later one started after.
	for {
		keys, fresh, err := j.await(ctx, seen)
		if err != nil && fresh {
			err = &keysUnavailableError{err: err}
			if slot, ok := ctx.Value(fetchErrKey{}).(*error); ok {
				*slot = err
			}
			return nil, err
		}
		if payload, ok := verifyWith(jws, kid, keys); ok {
			return payload, nil
		}
		if fresh {
			return nil, errors.New("no key of the provider verifies the signature")
		}
	}
}

func verifyWith(jws *jose.JSONWebSignature, kid string, keys []jose.JSONWebKey) ([]byte, bool) {
	for _, k := range keys {
		if kid == "" || k.KeyID == kid {
			if payload, err := jws.Verify(&k); err == nil {
				return payload, true
			}
		}
	}
	return nil, false
}

// await returns the result of the fetch that finished last if it started
// after seen fetches had (fresh), else of the fetch under way, else of a new
// one. A fetch that started before (not fresh) may predate the rotation.
func (j *jwks) await(ctx context.Context, seen uint64) (keys []jose.JSONWebKey, fresh bool, err error) {
	j.mu.Lock()
	if p := j.previous; p != nil && (p.seq > seen || time.Since(p.ended) < j.minInterval) {
		j.mu.Unlock()
		return p.keys, true, p.err
	}
	f := j.current
	if f == nil {
		j.started++
		f = &keyFetch{seq: j.started, done: make(chan struct{})}
		j.current = f
		go j.fetch(f)
	}
	j.mu.Unlock()
	select {
	case <-ctx.Done():
		return nil, true, ctx.Err() // the request gave up: keys not fetched for it
	case <-f.done:
		return f.keys, f.seq > seen, f.err
	}
}

// fetch runs f and publishes its result: keys, previous and current change
// together, before the waiters are released.
func (j *jwks) fetch(f *keyFetch) {
	ctx, cancel := context.WithTimeout(context.Background(), jwksFetchTimeout)
	defer cancel()
	keys, err := j.get(ctx)
	j.mu.Lock()
	f.keys, f.err, f.ended = keys, err, time.Now()
	if err == nil {
		j.keys = keys
	}
	j.previous, j.current = f, nil
	j.mu.Unlock()
	close(f.done)
}

// get reads the key set. Keys of a type or algorithm not supported are
// skipped, not fatal (RFC 7517 §5): providers list some (secp256k1, Ed448).
func (j *jwks) get(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", j.url, err)
	}
	req.Header.Set("Cache-Control", "no-cache") // a proxy's copy may predate the rotation
	req.Header.Set("Accept", "application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKS))
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", j.url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks %s: %s %.200s", j.url, resp.Status, body)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("jwks %s: not a key set: %w", j.url, err)
	}
	keys := make([]jose.JSONWebKey, 0, len(set.Keys))
	for _, raw := range set.Keys {
		var meta struct {
			Alg string `json:"alg"`
		}
		if err := json.Unmarshal(raw, &meta); err != nil {
			return nil, fmt.Errorf("jwks %s: key: %w", j.url, err)
		}
		if meta.Alg != "" && !slices.Contains(jwtAlgs, jose.SignatureAlgorithm(meta.Alg)) {
			continue
		}
		var k jose.JSONWebKey
		if err := json.Unmarshal(raw, &k); err != nil {
			if errors.Is(err, jose.ErrUnsupportedKeyType) {
				continue
			}
			return nil, fmt.Errorf("jwks %s: key: %w", j.url, err)
		}
		if _, symmetric := k.Key.([]byte); symmetric {
			continue // a published secret signs nothing of the provider's
		}
		keys = append(keys, k)
	}
	return keys, nil
}
