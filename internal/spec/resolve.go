package spec

import (
	"fmt"
	"strings"
	"time"
)

// ResolvedFeature is one feature column named by a reference, with everything
// needed to fetch it from a store.
type ResolvedFeature struct {
	// Ref is the canonical reference "set:column".
	Ref string `json:"ref"`
	// Set is the feature set and Name the column in its rows.
	Set  string `json:"set"`
	Name string `json:"name"`
	Type Type   `json:"type"`
	// TTL is the set's ttl: a row at ts serves t when t - TTL < ts <= t. 0 = no limit.
	TTL time.Duration `json:"ttl"`
	// Entity and JoinKeys identify the rows (join keys in the entity's order).
	Entity   string   `json:"entity"`
	JoinKeys []string `json:"join_keys"`
	// OnDemand marks a feature of an on-demand set (Set names it): computed
	// from other features after retrieval, not stored. Its TTL, Entity and
	// JoinKeys are zero.
	OnDemand bool `json:"on_demand,omitempty"`
}

// Resolve turns references into feature columns, in order, without duplicates
// (the first occurrence wins). A reference is one of:
//
//	service              every reference of the feature service, resolved in turn
//	set                  every column of the feature set (Columns order)
//	set:column           one column ("listing_engagement:clicks_sum_7d")
//	set:feature          every column of an aggregated feature ("listing_engagement:clicks")
//	ondemand             every feature of an on-demand set
//	ondemand:feature     one feature of an on-demand set ("user_listing:rent_to_budget")
//
// Unknown references are all reported in one error wrapping ErrUnknownFeature.
func (f *Features) Resolve(refs ...string) ([]ResolvedFeature, error) {
	var out []ResolvedFeature
	var errs []string
	seen := map[string]bool{}
	for _, ref := range refs {
		got, err := f.resolveRef(ref, true)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		for _, r := range got {
			if !seen[r.Ref] {
				seen[r.Ref] = true
				out = append(out, r)
			}
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrUnknownFeature, strings.Join(errs, "; "))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no feature references given", ErrUnknownFeature)
	}
	return out, nil
}

// ResolveService resolves the references of a feature service.
func (f *Features) ResolveService(name string) ([]ResolvedFeature, error) {
	s := f.Service(name)
	if s == nil {
		return nil, fmt.Errorf("%w: unknown feature service %q, expected one of: %s", ErrUnknownFeature, name, f.serviceNames())
	}
	return f.Resolve(s.Features...)
}

func (f *Features) resolveRef(ref string, allowService bool) ([]ResolvedFeature, error) {
	return f.resolve(ref, allowService, true)
}

// resolve is resolveRef; without onDemand, on-demand sets are not looked up.
func (f *Features) resolve(ref string, allowService, onDemand bool) ([]ResolvedFeature, error) {
	setName, col, hasCol := strings.Cut(strings.TrimSpace(ref), ":")
	if !hasCol && allowService {
		if s := f.Service(setName); s != nil {
			var out []ResolvedFeature
			for _, r := range s.Features {
				got, err := f.resolveRef(r, false)
				if err != nil {
					return nil, fmt.Errorf("feature service %q: %w", s.Name, err)
				}
				out = append(out, got...)
			}
			return out, nil
		}
	}
	if od := f.OnDemand(setName); od != nil && onDemand {
		var out []ResolvedFeature
		for _, ft := range od.Features {
			if !hasCol || ft.Name == col {
				out = append(out, ResolvedFeature{Ref: od.Name + ":" + ft.Name, Set: od.Name, Name: ft.Name, Type: ft.Type, OnDemand: true})
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("reference %q: unknown feature %q in on-demand set %q, expected one of: %s", ref, col, od.Name,
				orNone(namesOf(od.Features, func(ft *Feature) string { return ft.Name })))
		}
		return out, nil
	}
	fs := f.Set(setName)
	if fs == nil {
		kinds := "feature set"
		names := f.setNames()
		if allowService && !hasCol {
			kinds = "feature set or service"
			names = orNone(append(f.setNameList(), f.serviceNameList()...))
		}
		return nil, fmt.Errorf("reference %q: unknown %s %q, expected one of: %s", ref, kinds, setName, names)
	}
	var keys []string
	if e := f.Entity(fs.Entity); e != nil {
		keys = e.JoinKeys
	}
	resolved := func(c Column) ResolvedFeature {
		return ResolvedFeature{Ref: fs.Name + ":" + c.Name, Set: fs.Name, Name: c.Name, Type: c.Type,
			TTL: fs.TTL.D(), Entity: fs.Entity, JoinKeys: keys}
	}
	var out []ResolvedFeature
	cols := fs.Columns()
	for _, c := range cols {
		if !hasCol || c.Name == col || (c.Feature == col && !c.Derived) {
			out = append(out, resolved(c))
		}
	}
	if len(out) == 0 {
		names := make([]string, len(cols))
		for i, c := range cols {
			names[i] = c.Name
		}
		return nil, fmt.Errorf("reference %q: unknown feature %q in set %q, expected one of: %s", ref, col, fs.Name, orNone(names))
	}
	return out, nil
}

func (f *Features) setNameList() []string {
	return append(namesOf(f.FeatureSets, func(s *FeatureSet) string { return s.Name }),
		namesOf(f.OnDemandSets, func(s *OnDemandSet) string { return s.Name })...)
}

// SplitOnDemand separates stored features from on-demand ones, each in order.
func SplitOnDemand(features []ResolvedFeature) (stored, onDemand []ResolvedFeature) {
	for _, r := range features {
		if r.OnDemand {
			onDemand = append(onDemand, r)
		} else {
			stored = append(stored, r)
		}
	}
	return stored, onDemand
}

func (f *Features) serviceNameList() []string {
	return namesOf(f.Services, func(s *FeatureService) string { return s.Name })
}

func (f *Features) setNames() string     { return orNone(f.setNameList()) }
func (f *Features) serviceNames() string { return orNone(f.serviceNameList()) }

// SetFeatures is the resolved features of one set, in reference order.
type SetFeatures struct {
	Set      string
	Features []ResolvedFeature
}

// GroupBySet groups resolved features by set, sets in order of first appearance.
func GroupBySet(features []ResolvedFeature) []SetFeatures {
	idx := map[string]int{}
	var out []SetFeatures
	for _, r := range features {
		i, ok := idx[r.Set]
		if !ok {
			i = len(out)
			idx[r.Set] = i
			out = append(out, SetFeatures{Set: r.Set})
		}
		out[i].Features = append(out[i].Features, r)
	}
	return out
}
