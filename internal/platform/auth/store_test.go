package auth

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/platform/server"
)

func TestTokens(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		s := NewStore(db)
		now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
		s.now = func() time.Time { return now }

		if has, err := s.HasCredentials(ctx); err != nil || has {
			t.Fatalf("HasCredentials of an empty store = %v, %v", has, err)
		}
		secret, tok, err := s.CreateToken(ctx, "ci", Editor, 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(secret, "atr_"+tok.ID+"_") || len(secret) < 50 {
			t.Errorf("token %q does not carry its id %s and a long secret", secret, tok.ID)
		}
		p, err := s.AuthenticateToken(ctx, secret)
		if err != nil || p.Role != Editor || p.Name != "ci ("+tok.ID+")" {
			t.Fatalf("AuthenticateToken = %+v, %v", p, err)
		}
		// A wrong secret with the right id, a made-up token, garbage.
		for _, bad := range []string{secret[:len(secret)-1] + "x", "atr_000000000000_abc", "atr_", "Bearer", ""} {
			if _, err := s.AuthenticateToken(ctx, bad); !errors.Is(err, ErrUnauthenticated) {
				t.Errorf("AuthenticateToken(%q) = %v, want ErrUnauthenticated", bad, err)
			}
		}
		if has, err := s.HasCredentials(ctx); err != nil || !has {
			t.Errorf("HasCredentials with a token = %v, %v", has, err)
		}

		// Expiry: a day later the token no longer authenticates.
		now = now.Add(24*time.Hour + time.Millisecond)
		if _, err := s.AuthenticateToken(ctx, secret); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("expired token: %v", err)
		}
		if has, _ := s.HasCredentials(ctx); has {
			t.Errorf("an expired token counts as a credential")
		}

		// Revocation, by name: every active token of that name.
		forever, tok2, err := s.CreateToken(ctx, "ci", Reader, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AuthenticateToken(ctx, forever); err != nil {
			t.Fatal(err)
		}
		if n, err := s.RevokeToken(ctx, "ci"); err != nil || n != 1 {
			t.Errorf("RevokeToken(ci) = %d, %v; want 1 (the other is expired)", n, err)
		}
		if _, err := s.AuthenticateToken(ctx, forever); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("revoked token: %v", err)
		}
		if _, err := s.RevokeToken(ctx, tok2.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoking twice = %v, want ErrNotFound", err)
		}
		list, err := s.Tokens(ctx)
		if err != nil || len(list) != 2 || list[0].Active(now) || list[1].Active(now) || list[1].RevokedAt.IsZero() || !list[1].ExpiresAt.IsZero() {
			t.Errorf("Tokens = %+v, %v", list, err)
		}

		for _, tt := range []struct {
			name string
			role Role
			ttl  time.Duration
		}{{"", Reader, 0}, {"x", "root", 0}, {"x", Reader, -time.Hour}} {
			if _, _, err := s.CreateToken(ctx, tt.name, tt.role, tt.ttl); !errors.Is(err, ErrInvalid) {
				t.Errorf("CreateToken(%q, %q, %s) = %v, want ErrInvalid", tt.name, tt.role, tt.ttl, err)
			}
		}
	}, Schema)
}

func TestUsers(t *testing.T) {
	db := metatest.SQLite(t, Schema)
	ctx := context.Background()
	s := NewStore(db)
	if err := s.SetUser(ctx, "ana", Reader, "s3cret"); err != nil {
		t.Fatal(err)
	}
	if p, err := s.AuthenticatePassword(ctx, "ana", "s3cret"); err != nil || p.Role != Reader || p.String() != "user:ana" {
		t.Errorf("AuthenticatePassword = %+v, %v", p, err)
	}
	for _, tt := range [][2]string{{"ana", "wrong"}, {"bob", "s3cret"}, {"ana", ""}} {
		if _, err := s.AuthenticatePassword(ctx, tt[0], tt[1]); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("AuthenticatePassword(%q, %q) = %v, want ErrUnauthenticated", tt[0], tt[1], err)
		}
	}
	// Changing the password and role replaces both.
	if err := s.SetUser(ctx, "ana", Admin, "n3w"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthenticatePassword(ctx, "ana", "s3cret"); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("old password still works: %v", err)
	}
	if p, err := s.AuthenticatePassword(ctx, "ana", "n3w"); err != nil || p.Role != Admin {
		t.Errorf("new password: %+v, %v", p, err)
	}
	if us, err := s.Users(ctx); err != nil || len(us) != 1 || us[0].Name != "ana" || us[0].Role != Admin {
		t.Errorf("Users = %+v, %v", us, err)
	}
	for _, bad := range [][2]string{{"", "x"}, {"a:b", "x"}, {"carl", ""}} {
		if err := s.SetUser(ctx, bad[0], Reader, bad[1]); !errors.Is(err, ErrInvalid) {
			t.Errorf("SetUser(%q, %q) = %v, want ErrInvalid", bad[0], bad[1], err)
		}
	}
	if err := s.DeleteUser(ctx, "ana"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, "ana"); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteUser twice = %v", err)
	}
}

func TestAuditLog(t *testing.T) {
	db := metatest.SQLite(t, Schema)
	ctx := context.Background()
	s := NewStore(db)
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var entries []AuditEntry
	for i := range 5 {
		entries = append(entries, AuditEntry{At: t0.Add(time.Duration(i) * time.Minute), Principal: "token:ci", Method: "POST",
			Path: "/push", Route: "POST /push", Remote: "10.0.0.1:5000", Status: 200, RequestID: "r" + string(rune('0'+i))})
	}
	if err := s.Record(ctx, entries); err != nil {
		t.Fatal(err)
	}
	got, err := s.Audit(ctx, t0.Add(2*time.Minute), 2)
	if err != nil || len(got) != 2 || got[0].RequestID != "r3" || got[1].RequestID != "r4" || got[1].Remote != "10.0.0.1:5000" || !got[1].At.Equal(t0.Add(4*time.Minute)) {
		t.Errorf("Audit(since +2m, limit 2) = %+v, %v; want the newest two, oldest first", got, err)
	}
}

// TestEveryPermissionHasARole: a permission no role holds would make its
// routes unreachable; Public needs none.
func TestEveryPermissionHasARole(t *testing.T) {
	for _, p := range server.Permissions {
		if !Admin.Allows(p) {
			t.Errorf("admin lacks %s", p)
		}
	}
	if Reader.Allows(server.Edit) || Reader.Allows(server.PushFeatures) || Editor.Allows(server.Manage) || Editor.Allows(server.Admin) {
		t.Errorf("a role holds more than its documented permissions")
	}
	if _, err := ParseRole("superuser"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseRole(superuser) = %v", err)
	}
}

// TestPruneAudit: entries older than the cut are deleted, in batches (here
// of 3, with entries sharing a time across a batch's end), and younger ones
// kept, on every metadata database.
func TestPruneAudit(t *testing.T) {
	defer func(b int) { pruneBatch = b }(pruneBatch)
	pruneBatch = 3
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		s := NewStore(db)
		t0 := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
		var entries []AuditEntry
		// Ten entries a day apart, the third and fourth at the same time.
		for i := range 10 {
			at := t0.Add(time.Duration(i) * 24 * time.Hour)
			if i == 3 {
				at = entries[2].At
			}
			entries = append(entries, AuditEntry{At: at, Principal: "token:ci", Method: "POST", Path: "/push", Route: "POST /push", Status: 200, RequestID: strconv.Itoa(i)})
		}
		if err := s.Record(ctx, entries); err != nil {
			t.Fatal(err)
		}
		if sum, err := s.AuditSummary(ctx); err != nil || sum.Entries != 10 || !sum.Oldest.Equal(t0) {
			t.Fatalf("AuditSummary = %+v, %v; want 10 entries from %s", sum, err, t0)
		}
		n, err := s.PruneAudit(ctx, entries[8].At)
		if err != nil || n != 8 {
			t.Fatalf("PruneAudit(before entry 8) = %d, %v; want 8", n, err)
		}
		got, err := s.Audit(ctx, time.Time{}, 100)
		if err != nil || len(got) != 2 || got[0].RequestID != "8" || got[1].RequestID != "9" {
			t.Fatalf("after pruning: %+v, %v; want entries 8 and 9", got, err)
		}
		if n, err := s.PruneAudit(ctx, entries[8].At); err != nil || n != 0 {
			t.Errorf("pruning again = %d, %v; want 0", n, err)
		}
		if sum, err := s.AuditSummary(ctx); err != nil || sum.Entries != 2 || !sum.Oldest.Equal(entries[8].At) {
			t.Errorf("AuditSummary after pruning = %+v, %v", sum, err)
		}
	}, Schema)
}

// TestGrants: grants are set, replaced, listed and removed per user and
// resource; only users get them; removing a user removes its grants.
func TestGrants(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		s := NewStore(db)
		expA := Resource{KindExperiment, "1"}
		model := Resource{KindModel, "ranker"}
		if err := s.SetGrant(ctx, "ana", expA, LevelRead); !errors.Is(err, ErrNotFound) {
			t.Fatalf("grant to a user that does not exist = %v, want ErrNotFound", err)
		}
		for _, u := range []string{"ana", "bob"} {
			if err := s.SetUser(ctx, u, Reader, "pw"); err != nil {
				t.Fatal(err)
			}
		}
		for _, g := range []struct {
			user  string
			res   Resource
			level Level
		}{{"ana", expA, LevelRead}, {"ana", expA, LevelEdit}, {"ana", model, NoPermissions}, {"bob", model, LevelManage}} {
			if err := s.SetGrant(ctx, g.user, g.res, g.level); err != nil {
				t.Fatal(err)
			}
		}
		if l, err := s.Grant(ctx, "ana", expA); err != nil || l != LevelEdit {
			t.Errorf("Grant(ana, A) = %s, %v; want EDIT (the second grant replaced the first)", l, err)
		}
		if l, err := s.Grant(ctx, "bob", expA); err != nil || l != 0 {
			t.Errorf("Grant(bob, A) = %s, %v; want none", l, err)
		}
		all, err := s.Grants(ctx, "")
		if err != nil || len(all) != 3 || all[0].User != "ana" || all[0].Kind != KindExperiment || all[0].Permission != "EDIT" || all[2].User != "bob" {
			t.Errorf("Grants() = %+v, %v", all, err)
		}
		if err := s.SetGrant(ctx, "ana", Resource{"dataset", "x"}, LevelRead); !errors.Is(err, ErrInvalid) {
			t.Errorf("grant on an unknown kind = %v, want ErrInvalid", err)
		}
		if err := s.DeleteGrant(ctx, "ana", expA); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteGrant(ctx, "ana", expA); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoking twice = %v, want ErrNotFound", err)
		}
		if err := s.DeleteUser(ctx, "bob"); err != nil {
			t.Fatal(err)
		}
		if gs, err := s.Grants(ctx, "bob"); err != nil || len(gs) != 0 {
			t.Errorf("grants of a removed user = %+v, %v", gs, err)
		}
		if gs, err := s.Grants(ctx, "ana"); err != nil || len(gs) != 1 || gs[0].Permission != "NO_PERMISSIONS" {
			t.Errorf("Grants(ana) = %+v, %v", gs, err)
		}
	}, Schema)
}

func TestParseLevel(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Level
	}{{"READ", LevelRead}, {"edit", LevelEdit}, {"Manage", LevelManage}, {"NO_PERMISSIONS", NoPermissions}} {
		if l, err := ParseLevel(tt.in); err != nil || l != tt.want || !strings.EqualFold(l.String(), tt.in) {
			t.Errorf("ParseLevel(%q) = %s, %v", tt.in, l, err)
		}
	}
	if _, err := ParseLevel("WRITE"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseLevel(WRITE) = %v", err)
	}
	if !(NoPermissions < LevelRead && LevelRead < LevelEdit && LevelEdit < LevelManage) {
		t.Error("levels are not ordered")
	}
}
