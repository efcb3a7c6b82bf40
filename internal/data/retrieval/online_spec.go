package retrieval

import (
	"fmt"

	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/spec"
)

// DefinitionsFromSpec builds online serving definitions from the applied
// feature catalog. keyTypes are the join-key types learned from data
// (LoadKeyTypes); a set without them accepts either type until they are known.
// Services are resolved with the catalog's own rules (spec.Features.Resolve),
// so a service may name whole sets or an aggregated feature's columns.
func DefinitionsFromSpec(f *spec.Features, keyTypes map[string][]KeyType) (Definitions, error) {
	var d Definitions
	for _, fs := range f.FeatureSets {
		set := SetDef{Name: fs.Name, TTL: fs.TTL.D()}
		keys := f.JoinKeys(fs.Name)
		types := keyTypes[fs.Name]
		for i, k := range keys {
			t := KeyAny
			if len(types) == len(keys) {
				t = types[i]
			}
			set.JoinKeys = append(set.JoinKeys, JoinKeyDef{Name: k, Type: t})
		}
		for _, c := range fs.Columns() {
			kind, err := kindOf(c.Type)
			if err != nil {
				return d, fmt.Errorf("feature set %s: column %s: %w", fs.Name, c.Name, err)
			}
			set.Features = append(set.Features, FeatureDef{Name: c.Name, Type: kind})
		}
		// Checks of each output column, as quality.Run pairs them: a plain or
		// derived feature's on its column, an aggregated feature's on each of
		// its columns.
		for _, ft := range append(append([]*spec.Feature(nil), fs.Features...), fs.Derived...) {
			for _, col := range fs.Columns() {
				if col.Name != ft.Name && col.Feature != ft.Name {
					continue
				}
				for _, c := range ft.Checks {
					set.Checks = append(set.Checks, FeatureCheck{Feature: col.Name, Check: c})
				}
			}
		}
		d.Sets = append(d.Sets, set)
	}
	for _, od := range f.OnDemandSets {
		prg, vars, err := f.CompileOnDemand(od.Name)
		if err != nil {
			return d, err
		}
		def := OnDemandDef{Name: od.Name, Program: prg}
		for _, v := range vars {
			in := ""
			if v.Feature != nil {
				in = v.Feature.Ref
			}
			def.Inputs = append(def.Inputs, in)
		}
		d.OnDemand = append(d.OnDemand, def)
	}
	for _, s := range f.Services {
		resolved, err := f.ResolveService(s.Name)
		if err != nil {
			return d, err
		}
		svc := ServiceDef{Name: s.Name}
		for _, r := range resolved {
			svc.Features = append(svc.Features, r.Ref)
		}
		d.Services = append(d.Services, svc)
	}
	return d, nil
}

// kindOf maps a feature type to the online value kind that stores it.
func kindOf(t spec.Type) (online.Kind, error) {
	if k := t.Kind(); k != online.KindMissing {
		return k, nil
	}
	return online.KindNull, fmt.Errorf("type %q has no online representation", t)
}
