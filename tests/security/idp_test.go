package security

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// identityProvider is a local OIDC provider (discovery and keys over HTTP)
// whose tokens the test signs, so the suite can forge what an attacker
// would: unsigned tokens, tokens signed by another key under the
// provider's key id, HMAC tokens keyed with the provider's public key.
type identityProvider struct {
	srv *httptest.Server
	key *rsa.PrivateKey
	kid string
}

func newIdentityProvider(t *testing.T) *identityProvider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	idp := &identityProvider{key: key, kid: "k1"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": idp.srv.URL, "jwks_uri": idp.srv.URL + "/keys",
			"id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &idp.key.PublicKey, KeyID: idp.kid, Algorithm: "RS256", Use: "sig"}}})
	})
	idp.srv = httptest.NewServer(mux)
	t.Cleanup(idp.srv.Close)
	return idp
}

// claims are the provider's defaults (issuer, audience "atrium", an hour
// of validity) with over applied; a nil value removes a claim.
func (idp *identityProvider) claims(over map[string]any) map[string]any {
	c := map[string]any{"iss": idp.srv.URL, "aud": "atrium", "sub": "u-1", "preferred_username": "oidc-user",
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()}
	for k, v := range over {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

// signed is an RS256 JWT of claims signed with key under the provider's kid.
func (idp *identityProvider) signed(t *testing.T, key *rsa.PrivateKey, over map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithHeader("kid", idp.kid).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(idp.claims(over)).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// unsigned is a JWT with alg "none" and an empty signature: a library that
// honours the header's algorithm would accept it.
func (idp *identityProvider) unsigned(t *testing.T, over map[string]any) string {
	t.Helper()
	return idp.handMade(t, map[string]any{"alg": "none", "typ": "JWT", "kid": idp.kid}, over, nil)
}

// hmacWithPublicKey is an HS256 JWT keyed with the provider's public key
// (DER): the algorithm-confusion forgery against verifiers that take the
// algorithm from the token.
func (idp *identityProvider) hmacWithPublicKey(t *testing.T, over map[string]any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&idp.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return idp.handMade(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": idp.kid}, over, der)
}

// handMade encodes header and claims and signs them with HMAC-SHA256 under
// hmacKey, or leaves the signature empty when hmacKey is nil.
func (idp *identityProvider) handMade(t *testing.T, header, over map[string]any, hmacKey []byte) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(header) + "." + enc(idp.claims(over))
	if hmacKey == nil {
		return signing + "."
	}
	mac := hmac.New(sha256.New, hmacKey)
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}
