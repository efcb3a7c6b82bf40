package spec

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseFeatures checks that no input makes the feature parser panic, and that
// whatever it accepts resolves and lists columns without panicking either.
func FuzzParseFeatures(f *testing.F) {
	for _, p := range []string{"testdata/features/issue_example.yaml", "testdata/invalid/everything_wrong.yaml"} {
		b, err := os.ReadFile(filepath.FromSlash(p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("entities: [{name: a, join_keys: [k]}]\nfeature_sets: [{name: s, entity: a, source: x, windows: [1d], features: [{name: f, type: int64, expr: x, aggs: [sum], checks: [{between: [1, null]}]}]}]"))
	f.Add([]byte("feature_services: [{name: s, features: [\"a:b\", c]}]\n---\nentities: &x [1]\n"))
	f.Add([]byte("entities: [{name: a, join_keys: [k]}]\nsources: [{name: x, format: csv, path: p, timestamp: t}]\nfeature_sets: [{name: s, entity: a, source: x, features: [{name: f, type: float64, expr: x}]}]\n" +
		"on_demand_features: [{name: o, sources: [s], request: {r: int64}, features: [{name: g, type: float64, expr: \"f / double(r)\"}]}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		feats, err := ParseFeatures("f.yaml", data)
		if err != nil {
			return
		}
		for _, fs := range feats.FeatureSets {
			_ = fs.Columns()
			_, _ = feats.Resolve(fs.Name)
		}
		for _, s := range feats.Services {
			_, _ = feats.ResolveService(s.Name)
		}
		for _, od := range feats.OnDemandSets {
			// Whatever validates compiles: the checks at load are the same.
			if _, _, err := feats.CompileOnDemand(od.Name); err != nil {
				t.Errorf("on-demand set %s validated but does not compile: %v", od.Name, err)
			}
		}
	})
}
