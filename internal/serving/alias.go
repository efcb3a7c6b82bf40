package serving

import (
	"context"
	"fmt"
	"time"
)

// ResolveAlias returns the version of name that alias points at, for a
// caller that follows an alias of its own choosing (a ranker's model). ""
// or the model's own alias is Resolve's answer (its canary split by
// routeKey included). Another alias is followed like the model's canary
// and shadow aliases: loaded on first use (concurrent first requests load
// once), then read from memory, polled with the model's other aliases and
// swapped atomically when it moves.
//
// Errors are Resolve's.
func (s *Service) ResolveAlias(ctx context.Context, name, alias, routeKey string) (*Deployed, error) {
	if alias == "" || alias == s.configOf(name).Alias {
		return s.Resolve(ctx, name, "", routeKey)
	}
	if s.closed.Load() {
		return nil, fmt.Errorf("%w: the model server is shutting down", ErrNotReady)
	}
	if m := s.lookup(name); m != nil {
		if sl := m.aliasSlot(alias); sl != nil {
			if d := sl.cur.Load(); d != nil {
				return d, nil
			}
		}
	}
	return s.once(ctx, "alias\x00"+name+"\x00"+alias, "model "+name+" alias "+alias, func() (*Deployed, error) {
		if m := s.lookup(name); m != nil {
			if sl := m.aliasSlot(alias); sl != nil {
				if d := sl.cur.Load(); d != nil {
					return d, nil
				}
				if f := sl.failure(); f != nil && time.Since(f.at) < s.opts.RetryAfter {
					return nil, f.err
				}
			}
		}
		v, err := s.readAlias(ctx, name, alias)
		if err != nil {
			return nil, err
		}
		lctx, cancel := s.loadContext(ctx)
		defer cancel()
		m := s.model(name)
		sl := s.followAlias(m, alias)
		d, err := s.version(lctx, name, v.Version)
		if err == nil {
			err = s.install(m, sl, d)
		}
		if err != nil {
			sl.fail(v.Version, err)
			return nil, err
		}
		return d, nil
	})
}

// aliasSlot is the slot following alias among the model's slots, or nil.
func (m *model) aliasSlot(alias string) *slot {
	for _, sl := range m.slots() {
		if sl.alias == alias {
			return sl
		}
	}
	return nil
}

// followAlias returns the slot following alias, adding it to the model's
// extra slots (which the watcher polls) when none follows it yet.
func (s *Service) followAlias(m *model, alias string) *slot {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sl := m.aliasSlot(alias); sl != nil {
		return sl
	}
	var ex []*slot
	if cur := m.extra.Load(); cur != nil {
		ex = append(ex, *cur...)
	}
	sl := &slot{alias: alias}
	ex = append(ex, sl)
	m.extra.Store(&ex)
	return sl
}
