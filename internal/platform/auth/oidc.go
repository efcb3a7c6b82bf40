package auth

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
)

// OIDCOptions configure the validation of JWTs an identity provider issued
// (server.auth.oidc of atrium.yaml).
type OIDCOptions struct {
	// Issuer is the provider's issuer URL: tokens must carry it as "iss",
	// and, unless JWKSURL is set, its discovery document
	// (<issuer>/.well-known/openid-configuration) names the signing keys.
	Issuer string
	// Audience is what tokens must carry in "aud" (the client id, or the
	// API's identifier at the provider). Required.
	Audience string
	// RoleClaim names the claim holding the caller's role: a string or a
	// list of strings among reader, editor and admin (the highest wins).
	// Default "roles". A token without one of them is authenticated but
	// holds no permission.
	RoleClaim string
	// JWKSURL, when set, is where the signing keys are, and discovery is
	// skipped.
	JWKSURL string
	// HTTPClient fetches the discovery document and keys. Default: a client
	// with a 5 s timeout, so a provider that hangs cannot hold requests.
	HTTPClient *http.Client
	// MinKeyFetchInterval is the least time between two fetches of the
	// provider's keys (a token naming an unknown key within it is refused
	// on the keys fetched last). Default 5 s; negative for none.
	MinKeyFetchInterval time.Duration
}

// OIDC validates bearer JWTs against an identity provider's keys (fetched
// once and again when a token names a key not seen yet: key rotation needs
// no restart).
type OIDC struct {
	verifier  *oidc.IDTokenVerifier
	roleClaim string
}

// NewOIDC returns the validator. Without JWKSURL it fetches the issuer's
// discovery document, and fails if the provider cannot be reached.
func NewOIDC(ctx context.Context, o OIDCOptions) (*OIDC, error) {
	if o.Issuer == "" || o.Audience == "" {
		return nil, fmt.Errorf("%w: oidc needs an issuer and an audience", ErrInvalid)
	}
	if o.RoleClaim == "" {
		o.RoleClaim = "roles"
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	jwksURL, algs := o.JWKSURL, jwtAlgs
	if jwksURL == "" {
		p, err := oidc.NewProvider(oidc.ClientContext(ctx, o.HTTPClient), o.Issuer)
		if err != nil {
			return nil, fmt.Errorf("oidc issuer %s: %w", o.Issuer, err)
		}
		var doc struct {
			JWKSURI string   `json:"jwks_uri"`
			Algs    []string `json:"id_token_signing_alg_values_supported"`
		}
		if err := p.Claims(&doc); err != nil {
			return nil, fmt.Errorf("oidc issuer %s: discovery document: %w", o.Issuer, err)
		}
		if doc.JWKSURI == "" {
			return nil, fmt.Errorf("oidc issuer %s: the discovery document names no jwks_uri; set jwks_url", o.Issuer)
		}
		// The algorithms the provider signs with, among those supported;
		// none named: RS256, the one every provider must support (as
		// go-oidc's Provider does).
		jwksURL, algs = doc.JWKSURI, nil
		for _, a := range doc.Algs {
			if slices.Contains(jwtAlgs, jose.SignatureAlgorithm(a)) {
				algs = append(algs, jose.SignatureAlgorithm(a))
			}
		}
		if len(algs) == 0 {
			algs = []jose.SignatureAlgorithm{jose.RS256}
		}
	}
	cfg := &oidc.Config{ClientID: o.Audience}
	for _, a := range algs {
		cfg.SupportedSigningAlgs = append(cfg.SupportedSigningAlgs, string(a))
	}
	minInterval := o.MinKeyFetchInterval
	switch {
	case minInterval == 0:
		minInterval = defaultKeyFetchInterval
	case minInterval < 0:
		minInterval = 0
	}
	// Our key set, not go-oidc's RemoteKeySet: see jwks.
	v := oidc.NewVerifier(o.Issuer, newJWKS(jwksURL, o.HTTPClient, minInterval), cfg)
	return &OIDC{verifier: v, roleClaim: o.RoleClaim}, nil
}

// looksLikeJWT tells a JWT (three base64url parts) from an Atrium token.
func looksLikeJWT(s string) bool {
	return strings.Count(s, ".") == 2 && !strings.HasPrefix(s, tokenPrefix)
}

// Verify returns the principal of a JWT: kind "oidc", named by its
// preferred_username (else its subject), with the highest role its role
// claim names. An invalid, expired or foreign token is ErrUnauthenticated;
// an unreachable provider (keys not fetched) is another error.
func (o *OIDC) Verify(ctx context.Context, raw string) (Principal, error) {
	var fetchErr error
	tok, err := o.verifier.Verify(context.WithValue(ctx, fetchErrKey{}, &fetchErr), raw)
	if err != nil {
		// Every failure is the token's but a failure to fetch the keys,
		// which the key set reports by type in fetchErr (go-oidc formats
		// it into its own error with %v, losing the type).
		if fetchErr != nil {
			return Principal{}, fmt.Errorf("jwt: %w", fetchErr)
		}
		return Principal{}, fmt.Errorf("%w: jwt: %v", ErrUnauthenticated, err)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return Principal{}, fmt.Errorf("%w: jwt claims: %v", ErrUnauthenticated, err)
	}
	name := tok.Subject
	if u, ok := claims["preferred_username"].(string); ok && u != "" {
		name = u
	}
	var names []string
	switch v := claims[o.roleClaim].(type) {
	case string:
		names = []string{v}
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok {
				names = append(names, s)
			}
		}
	}
	role := Role("")
	for _, r := range Roles { // least first: the highest named wins
		for _, n := range names {
			if strings.EqualFold(n, string(r)) {
				role = r
			}
		}
	}
	return Principal{Kind: "oidc", Name: name, Role: role, expires: tok.Expiry}, nil
}
