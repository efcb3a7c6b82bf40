package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/atrium-ml/atrium/internal/platform/meta"
)

// Schema is the auth tables: tokens, users, the audit log and per-resource
// grants.
var Schema = meta.Schema{Component: "auth", Migrations: []meta.Migration{{
	Version: 1,
	Name:    "create tokens, users and audit log",
	Statements: []string{
		// A token is shown once, at creation; only the SHA-256 of the whole
		// token is kept. The id is the token's lookup prefix: it is not
		// secret (it is shown by `atrium token list`).
		`CREATE TABLE auth_tokens (
			id TEXT PRIMARY KEY,
			name TEXT NOT NULL,
			role TEXT NOT NULL,
			hash TEXT NOT NULL,
			created_at BIGINT NOT NULL,
			expires_at BIGINT NOT NULL,
			revoked_at BIGINT NOT NULL)`,
		`CREATE TABLE auth_users (
			name TEXT PRIMARY KEY,
			role TEXT NOT NULL,
			password_hash TEXT NOT NULL,
			created_at BIGINT NOT NULL,
			updated_at BIGINT NOT NULL)`,
		`CREATE TABLE auth_audit (
			at BIGINT NOT NULL,
			principal TEXT NOT NULL,
			method TEXT NOT NULL,
			path TEXT NOT NULL,
			route TEXT NOT NULL,
			remote TEXT NOT NULL,
			status INTEGER NOT NULL,
			request_id TEXT NOT NULL)`,
		`CREATE INDEX auth_audit_at ON auth_audit (at)`,
	},
}, {
	Version: 2,
	Name:    "create per-resource grants",
	Statements: []string{
		// MLflow basic-auth's experiment_permissions and
		// registered_model_permissions in one table: a user's permission on
		// one experiment (kind "experiment", its id) or registered model
		// (kind "registered_model", its name).
		`CREATE TABLE auth_grants (
			user_name TEXT NOT NULL,
			kind TEXT NOT NULL,
			resource TEXT NOT NULL,
			permission TEXT NOT NULL,
			created_at BIGINT NOT NULL,
			PRIMARY KEY (user_name, kind, resource))`,
	},
}}}

// tokenPrefix starts every token, so that a leaked one is recognisable (by
// secret scanners, by Guard telling a token from a password).
const tokenPrefix = "atr_"

// Token is a stored token (never its secret).
type Token struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is zero for a token that does not expire.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// RevokedAt is zero for a token not revoked.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// Active reports whether t authenticates at now.
func (t Token) Active(now time.Time) bool {
	return t.RevokedAt.IsZero() && (t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt))
}

// User is a stored user (never the password hash).
type User struct {
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// Principal is who made a request: a token, a user, or nobody (when the
// server runs without authentication).
type Principal struct {
	// Kind is "token", "user" or "anonymous".
	Kind string
	// Name is the token's "name (id)" or the user name.
	Name string
	Role Role
	// expires bounds how long the principal may be cached (zero: no bound).
	expires time.Time
}

// String is how the audit log names p.
func (p Principal) String() string { return p.Kind + ":" + p.Name }

// Store keeps tokens, users and the audit log in the metadata database
// (migrated with Schema). It is safe for concurrent use.
type Store struct {
	db  *meta.DB
	now func() time.Time
}

// NewStore returns the store over db.
func NewStore(db *meta.DB) *Store { return &Store{db: db, now: time.Now} }

func toMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CreateToken creates a token for role that expires after ttl (0: never) and
// returns it with its secret form, the only time the secret is available.
func (s *Store) CreateToken(ctx context.Context, name string, role Role, ttl time.Duration) (string, Token, error) {
	if strings.TrimSpace(name) == "" {
		return "", Token{}, fmt.Errorf("%w: a token needs a name", ErrInvalid)
	}
	if _, err := ParseRole(string(role)); err != nil {
		return "", Token{}, err
	}
	if ttl < 0 {
		return "", Token{}, fmt.Errorf("%w: negative expiry %s", ErrInvalid, ttl)
	}
	// 6 random bytes of id (a lookup key, not a secret) and 32 of secret: the
	// SHA-256 of a 256-bit random secret needs no salt nor slow hash.
	idb := make([]byte, 6)
	secret := make([]byte, 32)
	_, _ = rand.Read(idb) // crypto/rand.Read never fails (Go 1.24+)
	_, _ = rand.Read(secret)
	id := hex.EncodeToString(idb)
	token := tokenPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(secret)
	now := s.now().UTC().Truncate(time.Millisecond)
	t := Token{ID: id, Name: name, Role: role, CreatedAt: now}
	if ttl > 0 {
		t.ExpiresAt = now.Add(ttl)
	}
	if _, err := s.db.Exec(ctx, `INSERT INTO auth_tokens (id, name, role, hash, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, 0)`,
		id, name, string(role), hashToken(token), toMillis(now), toMillis(t.ExpiresAt)); err != nil {
		return "", Token{}, fmt.Errorf("create token %s: %w", name, err)
	}
	return token, t, nil
}

// Tokens lists every token, revoked and expired ones included, oldest first.
func (s *Store) Tokens(ctx context.Context) ([]Token, error) {
	return meta.Collect(ctx, s.db, `SELECT id, name, role, created_at, expires_at, revoked_at FROM auth_tokens ORDER BY created_at, id`, nil,
		func(row meta.Scanner) (Token, error) {
			var t Token
			var role string
			var created, expires, revoked int64
			if err := row.Scan(&t.ID, &t.Name, &role, &created, &expires, &revoked); err != nil {
				return t, err
			}
			t.Role, t.CreatedAt, t.ExpiresAt, t.RevokedAt = Role(role), fromMillis(created), fromMillis(expires), fromMillis(revoked)
			return t, nil
		})
}

// RevokeToken revokes the token with id idOrName, or else every active token
// named idOrName, and returns how many it revoked. None: ErrNotFound.
func (s *Store) RevokeToken(ctx context.Context, idOrName string) (int, error) {
	now := toMillis(s.now())
	res, err := s.db.Exec(ctx, `UPDATE auth_tokens SET revoked_at = ? WHERE revoked_at = 0 AND (id = ? OR (name = ? AND (expires_at = 0 OR expires_at > ?)))`,
		now, idOrName, idOrName, now)
	if err != nil {
		return 0, fmt.Errorf("revoke token %s: %w", idOrName, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("revoke token %s: %w", idOrName, err)
	}
	if n == 0 {
		return 0, fmt.Errorf("token %q: %w (no active token has this id or name)", idOrName, ErrNotFound)
	}
	return int(n), nil
}

// SetUser creates user name with role and password, or replaces the role
// and password of an existing one.
func (s *Store) SetUser(ctx context.Context, name string, role Role, password string) error {
	if strings.TrimSpace(name) == "" || strings.Contains(name, ":") {
		return fmt.Errorf("%w: user name %q: it must be non-empty and hold no ':' (HTTP basic auth splits on it)", ErrInvalid, name)
	}
	if password == "" {
		return fmt.Errorf("%w: user %s: empty password", ErrInvalid, name)
	}
	if _, err := ParseRole(string(role)); err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		// Passwords over 72 bytes: bcrypt reads no further.
		return fmt.Errorf("%w: user %s: %w", ErrInvalid, name, err)
	}
	now := toMillis(s.now())
	return s.db.InTx(ctx, func(tx *meta.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE auth_users SET role = ?, password_hash = ?, updated_at = ? WHERE name = ?`, string(role), string(hash), now, name)
		if err != nil {
			return fmt.Errorf("set user %s: %w", name, err)
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO auth_users (name, role, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
			name, string(role), string(hash), now, now); err != nil {
			return fmt.Errorf("create user %s: %w", name, err)
		}
		return nil
	})
}

// Users lists the users by name.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	return meta.Collect(ctx, s.db, `SELECT name, role, created_at FROM auth_users ORDER BY name`, nil,
		func(row meta.Scanner) (User, error) {
			var u User
			var role string
			var created int64
			err := row.Scan(&u.Name, &role, &created)
			u.Role, u.CreatedAt = Role(role), fromMillis(created)
			return u, err
		})
}

// DeleteUser removes user name and its grants (ErrNotFound if there is
// none): a user added again later under the name starts without them.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	defer grantsChanged.Add(1)
	return s.db.InTx(ctx, func(tx *meta.Tx) error {
		res, err := tx.Exec(ctx, `DELETE FROM auth_users WHERE name = ?`, name)
		if err != nil {
			return fmt.Errorf("delete user %s: %w", name, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("delete user %s: %w", name, err)
		} else if n == 0 {
			return fmt.Errorf("user %q: %w", name, ErrNotFound)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM auth_grants WHERE user_name = ?`, name); err != nil {
			return fmt.Errorf("delete the grants of user %s: %w", name, err)
		}
		return nil
	})
}

// HasCredentials reports whether any user or active token exists: whether
// anybody could authenticate.
func (s *Store) HasCredentials(ctx context.Context) (bool, error) {
	var n int64
	now := toMillis(s.now())
	err := s.db.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM auth_users) + (SELECT COUNT(*) FROM auth_tokens WHERE revoked_at = 0 AND (expires_at = 0 OR expires_at > ?))`, now).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("count credentials: %w", err)
	}
	return n > 0, nil
}

// AuthenticateToken returns the principal of token, or ErrUnauthenticated
// when it is malformed, unknown, expired or revoked.
func (s *Store) AuthenticateToken(ctx context.Context, token string) (Principal, error) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	id, _, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || len(id) != 12 {
		return Principal{}, fmt.Errorf("%w: malformed token", ErrUnauthenticated)
	}
	var name, role, hash string
	var expires, revoked int64
	err := s.db.QueryRow(ctx, `SELECT name, role, hash, expires_at, revoked_at FROM auth_tokens WHERE id = ?`, id).Scan(&name, &role, &hash, &expires, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, fmt.Errorf("%w: unknown token %s", ErrUnauthenticated, id)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("look up token %s: %w", id, err)
	}
	// Constant time: the hash is compared byte by byte only after the id, which
	// is not secret, found the row.
	if subtle.ConstantTimeCompare([]byte(hashToken(token)), []byte(hash)) != 1 {
		return Principal{}, fmt.Errorf("%w: wrong secret for token %s", ErrUnauthenticated, id)
	}
	t := Token{ExpiresAt: fromMillis(expires), RevokedAt: fromMillis(revoked)}
	if !t.Active(s.now()) {
		return Principal{}, fmt.Errorf("%w: token %s is expired or revoked", ErrUnauthenticated, id)
	}
	return Principal{Kind: "token", Name: name + " (" + id + ")", Role: Role(role), expires: t.ExpiresAt}, nil
}

// AuthenticatePassword returns the principal of user name with password, or
// ErrUnauthenticated.
func (s *Store) AuthenticatePassword(ctx context.Context, name, password string) (Principal, error) {
	var role, hash string
	err := s.db.QueryRow(ctx, `SELECT role, password_hash FROM auth_users WHERE name = ?`, name).Scan(&role, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		// Compare anyway, so that timing does not tell which names exist.
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return Principal{}, fmt.Errorf("%w: unknown user %q", ErrUnauthenticated, name)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("look up user %s: %w", name, err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return Principal{}, fmt.Errorf("%w: wrong password for user %q", ErrUnauthenticated, name)
	}
	return Principal{Kind: "user", Name: name, Role: Role(role)}, nil
}

// dummyHash is a bcrypt hash compared against for unknown user names, made
// on first use (not at start-up of every command).
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("atrium-unknown-user"), bcrypt.DefaultCost)
	return h
})

// AuditEntry is one mutating call.
type AuditEntry struct {
	At        time.Time `json:"at"`
	Principal string    `json:"principal"`
	Method    string    `json:"method"`
	Path      string    `json:"path"`
	// Route is the pattern the call matched: what kind of call it was.
	Route     string `json:"route"`
	Remote    string `json:"remote"`
	Status    int    `json:"status"`
	RequestID string `json:"request_id"`
}

// Record appends entries to the audit log, in one transaction.
func (s *Store) Record(ctx context.Context, entries []AuditEntry) error {
	return s.db.InTx(ctx, func(tx *meta.Tx) error {
		for _, e := range entries {
			if _, err := tx.Exec(ctx, `INSERT INTO auth_audit (at, principal, method, path, route, remote, status, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				e.At.UnixMicro(), e.Principal, e.Method, e.Path, e.Route, e.Remote, e.Status, e.RequestID); err != nil {
				return fmt.Errorf("record audit entry: %w", err)
			}
		}
		return nil
	})
}

// Audit returns the audit entries at or after since, oldest first, at most
// limit of them (the newest limit when there are more).
func (s *Store) Audit(ctx context.Context, since time.Time, limit int) ([]AuditEntry, error) {
	entries, err := meta.Collect(ctx, s.db, `SELECT at, principal, method, path, route, remote, status, request_id FROM auth_audit WHERE at >= ? ORDER BY at DESC LIMIT ?`,
		[]any{since.UnixMicro(), limit}, func(row meta.Scanner) (AuditEntry, error) {
			var e AuditEntry
			var at int64
			err := row.Scan(&at, &e.Principal, &e.Method, &e.Path, &e.Route, &e.Remote, &e.Status, &e.RequestID)
			e.At = time.UnixMicro(at).UTC()
			return e, err
		})
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	for i, j := 0, len(entries)-1; i < j; i, j = i+1, j-1 {
		entries[i], entries[j] = entries[j], entries[i]
	}
	return entries, nil
}

// pruneBatch bounds the entries one statement of PruneAudit deletes, so that
// pruning a large backlog never holds the database's write lock for long
// (audit entries and every other write queue behind it on SQLite).
var pruneBatch = 10_000

// PruneAudit deletes the audit entries older than before, in batches of
// about pruneBatch, and returns how many it deleted. It stops at ctx's end,
// having deleted whole batches.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		// The time of the batch's last entry (the index on at finds it);
		// entries sharing it are deleted with the batch. None: the rest is
		// one batch.
		cut := before.UnixMicro()
		var at int64
		err := s.db.QueryRow(ctx, `SELECT at FROM auth_audit WHERE at < ? ORDER BY at LIMIT 1 OFFSET ?`, cut, pruneBatch-1).Scan(&at)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return total, fmt.Errorf("prune audit log: %w", err)
		default:
			cut = at + 1
		}
		res, err := s.db.Exec(ctx, `DELETE FROM auth_audit WHERE at < ?`, cut)
		if err != nil {
			return total, fmt.Errorf("prune audit log: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("prune audit log: %w", err)
		}
		total += n
		if cut == before.UnixMicro() || n == 0 {
			return total, nil
		}
	}
}

// AuditSummary is how much the audit log holds.
type AuditSummary struct {
	Entries int64 `json:"entries"`
	// Oldest is the time of the oldest entry (zero when there is none).
	Oldest time.Time `json:"oldest,omitzero"`
}

// AuditSummary counts the audit log's entries and finds the oldest.
func (s *Store) AuditSummary(ctx context.Context) (AuditSummary, error) {
	var n int64
	var oldest sql.NullInt64
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*), MIN(at) FROM auth_audit`).Scan(&n, &oldest); err != nil {
		return AuditSummary{}, fmt.Errorf("read audit log: %w", err)
	}
	sum := AuditSummary{Entries: n}
	if oldest.Valid {
		sum.Oldest = time.UnixMicro(oldest.Int64).UTC()
	}
	return sum, nil
}
