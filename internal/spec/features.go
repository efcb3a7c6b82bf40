package spec

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// FeaturesDir is the directory of feature definitions inside a repository.
const FeaturesDir = "features"

// Features is every definition of features/*.yaml: entities, sources, feature
// sets, feature services and on-demand sets. Names are unique within each kind,
// and no two of a feature set, a feature service and an on-demand set share a
// name, so a reference resolves one way only.
//
// A *Features returned by LoadFeatures or ParseFeatures has passed Validate; one
// decoded from JSON (the catalog's stored form) was valid when it was stored.
// Treat it as read-only: it is shared by every goroutine of a server.
type Features struct {
	Entities    []*Entity         `json:"entities"`
	Sources     []*Source         `json:"sources"`
	FeatureSets []*FeatureSet     `json:"feature_sets"`
	Services    []*FeatureService `json:"feature_services"`
	// OnDemandSets are request-time features (on_demand_features).
	OnDemandSets []*OnDemandSet `json:"on_demand_features,omitempty"`
}

// Pos locates a definition in its file. It is not stored in the catalog.
type Pos struct {
	File string `json:"-"`
	Line int    `json:"-"`
	// fields holds the line of each key of the definition's mapping.
	fields map[string]int
}

// At returns the line of a key of the definition, or the definition's own line.
func (p Pos) At(key string) int {
	if l := p.fields[key]; l > 0 {
		return l
	}
	return p.Line
}

// Entity is what features describe (a listing, a user), identified by its join keys.
type Entity struct {
	Name        string   `json:"name"`
	JoinKeys    []string `json:"join_keys"`
	Description string   `json:"description,omitempty"`
	Pos         `json:"-"`
}

// Source formats.
const (
	FormatCSV     = "csv"
	FormatParquet = "parquet"
	FormatJSON    = "json"
)

// Source is raw data: files of one format matched by a path or glob (relative to the
// repository unless absolute), with a timestamp column giving each row's event time.
type Source struct {
	Name      string `json:"name"`
	Format    string `json:"format"`
	Path      string `json:"path"`
	Timestamp string `json:"timestamp"`
	// Ready, when set, is checked before a scheduled run of a set reading
	// the source starts (docs/scheduling.md).
	Ready       *Ready `json:"ready,omitempty"`
	Description string `json:"description,omitempty"`
	Pos         `json:"-"`
}

// FeatureSet computes features of one entity from one source. A plain set (no
// windows) maps each source row to a feature row; an aggregated set has one row per
// key per slide step, with a column <feature>_<agg>_<window> per feature, aggregation
// and window. Derived features are expressions over those columns.
type FeatureSet struct {
	Name   string `json:"name"`
	Entity string `json:"entity"`
	Source string `json:"source"`
	// TTL bounds how old a row may be to be served or joined: a row at ts is valid
	// for t with t - ttl < ts <= t. Zero means no bound.
	TTL Duration `json:"ttl"`
	// Where filters source rows (a SQL boolean expression over source columns).
	Where   string     `json:"where,omitempty"`
	Windows []Duration `json:"windows,omitempty"`
	// Slide is the step between rows of an aggregated set. Default 1d.
	Slide    Duration   `json:"slide,omitempty"`
	Features []*Feature `json:"features"`
	Derived  []*Feature `json:"derived,omitempty"`
	Checks   []*Check   `json:"checks,omitempty"`
	// Schedule, when set, runs the set for each period of the schedule
	// (docs/scheduling.md).
	Schedule *Schedule `json:"schedule,omitempty"`
	// Materialize, when set, writes the set's latest rows to the online
	// store after each scheduled run or on a schedule of its own.
	Materialize *Materialize `json:"materialize,omitempty"`
	Description string       `json:"description,omitempty"`
	Pos         `json:"-"`
}

// Feature is one SQL expression with its type. In an aggregated set, Type is the type
// of the expression's values before aggregation and Aggs lists the aggregations.
type Feature struct {
	Name   string   `json:"name"`
	Type   Type     `json:"type"`
	Expr   string   `json:"expr"`
	Aggs   []Agg    `json:"aggs,omitempty"`
	Checks []*Check `json:"checks,omitempty"`
	Pos    `json:"-"`
}

// FeatureService names a list of feature references that a model uses.
type FeatureService struct {
	Name        string   `json:"name"`
	Features    []string `json:"features"`
	Description string   `json:"description,omitempty"`
	Pos         `json:"-"`
}

// Aggregated reports whether the set has windows.
func (fs *FeatureSet) Aggregated() bool { return len(fs.Windows) > 0 }

// DefaultSlide is the slide of an aggregated set that names none.
const DefaultSlide = Duration(24 * 60 * 60 * 1e9)

// LargestWindow returns the largest window (0 for a plain set).
func (fs *FeatureSet) LargestWindow() Duration {
	var m Duration
	for _, w := range fs.Windows {
		m = max(m, w)
	}
	return m
}

// Entity returns the entity named name, or nil.
func (f *Features) Entity(name string) *Entity {
	return find(f.Entities, func(v *Entity) bool { return v.Name == name })
}

// Source returns the source named name, or nil.
func (f *Features) Source(name string) *Source {
	return find(f.Sources, func(v *Source) bool { return v.Name == name })
}

// Set returns the feature set named name, or nil.
func (f *Features) Set(name string) *FeatureSet {
	return find(f.FeatureSets, func(v *FeatureSet) bool { return v.Name == name })
}

// Service returns the feature service named name, or nil.
func (f *Features) Service(name string) *FeatureService {
	return find(f.Services, func(v *FeatureService) bool { return v.Name == name })
}

// find returns the first element that matches, or nil.
func find[T any](list []*T, match func(*T) bool) *T {
	if i := slices.IndexFunc(list, match); i >= 0 {
		return list[i]
	}
	return nil
}

// JoinKeys returns the join keys of a set's entity (nil if the set or entity is unknown).
func (f *Features) JoinKeys(set string) []string {
	fs := f.Set(set)
	if fs == nil {
		return nil
	}
	if e := f.Entity(fs.Entity); e != nil {
		return e.JoinKeys
	}
	return nil
}

// ensureDefaults fills defaulted fields (an aggregated set's slide).
func (f *Features) ensureDefaults() {
	for _, fs := range f.FeatureSets {
		if fs.Aggregated() && fs.Slide == 0 {
			fs.Slide = DefaultSlide
		}
	}
}

// LoadFeatures reads and validates every features/*.yaml (and *.yml) file of the
// repository at dir, in file-name order. File names in problems are relative to dir.
// A repository without a features directory has no features (not an error).
func LoadFeatures(dir string) (*Features, error) {
	f, ps, err := LoadFeaturesWithProblems(dir)
	if err != nil {
		return nil, err
	}
	if err := ps.Err(); err != nil {
		return nil, err
	}
	return f, nil
}

// LoadFeaturesWithProblems is LoadFeatures for callers that go on checking a
// catalog with problems (apply binds SQL too, to report everything at once): it
// returns what could be decoded along with the problems. Only I/O failures are errors.
func LoadFeaturesWithProblems(dir string) (*Features, Problems, error) {
	names, srcs, err := readYAMLDir(dir, FeaturesDir)
	if err != nil {
		return nil, nil, err
	}
	f, ps := parseFiles(names, srcs)
	return f, ps, nil
}

// readYAMLDir reads every *.yaml and *.yml file of dir/sub, in file-name
// order, keyed by their path relative to dir. A missing directory has none.
func readYAMLDir(dir, sub string) ([]string, map[string][]byte, error) {
	// Glob only the file names, within the directory: the repository's
	// path is literal even when it holds glob characters ("/work/p[3]").
	subDir := filepath.Join(dir, sub)
	var files []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, err := fs.Glob(os.DirFS(subDir), pat)
		if err != nil {
			return nil, nil, err
		}
		for _, name := range m {
			files = append(files, filepath.Join(subDir, name))
		}
	}
	sort.Strings(files)
	srcs := make(map[string][]byte, len(files))
	names := make([]string, 0, len(files))
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", path, err)
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			rel = path
		}
		srcs[rel] = data
		names = append(names, rel)
	}
	return names, srcs, nil
}

// ParseFeatures parses and validates one feature file's content (file names the
// file in problems).
func ParseFeatures(file string, data []byte) (*Features, error) {
	f, ps := parseFiles([]string{file}, map[string][]byte{file: data})
	if err := ps.Err(); err != nil {
		return nil, err
	}
	return f, nil
}

// parseFiles decodes and validates the files. A file with a YAML syntax error
// contributes no definitions, so references to names it may define are not
// reported: they would be false errors in the other files, hiding the one
// that matters.
func parseFiles(names []string, srcs map[string][]byte) (*Features, Problems) {
	f := &Features{}
	var ps Problems
	parsed := true
	for _, name := range names {
		parsed = decodeFile(f, name, srcs[name], &ps) && parsed
	}
	f.ensureDefaults()
	for _, p := range f.Validate() {
		if parsed || !p.dangling {
			ps = append(ps, p)
		}
	}
	return f, ps
}

// decodeFile adds the definitions of one file to f; it returns false when the
// file is not valid YAML (one problem, with line and column, is recorded).
func decodeFile(f *Features, file string, data []byte, ps *Problems) bool {
	parsed, err := parser.ParseBytes(data, 0)
	if err != nil {
		*ps = append(*ps, yamlProblem(file, err))
		return false
	}
	d := &nodeDecoder{file: file, ps: ps}
	for _, doc := range parsed.Docs {
		if doc == nil || isNull(doc.Body) {
			continue
		}
		d.mapping(doc.Body, "feature file", map[string]func(ast.Node){
			"entities": func(n ast.Node) {
				d.seq(n, "entities", func(n ast.Node) { f.Entities = append(f.Entities, d.entity(n)) })
			},
			"sources": func(n ast.Node) {
				d.seq(n, "sources", func(n ast.Node) { f.Sources = append(f.Sources, d.source(n)) })
			},
			"feature_sets": func(n ast.Node) {
				d.seq(n, "feature_sets", func(n ast.Node) { f.FeatureSets = append(f.FeatureSets, d.featureSet(n)) })
			},
			"feature_services": func(n ast.Node) {
				d.seq(n, "feature_services", func(n ast.Node) { f.Services = append(f.Services, d.service(n)) })
			},
			"on_demand_features": func(n ast.Node) {
				d.seq(n, "on_demand_features", func(n ast.Node) { f.OnDemandSets = append(f.OnDemandSets, d.onDemandSet(n)) })
			},
		})
	}
	return true
}

func (d *nodeDecoder) pos(n ast.Node, lines map[string]int) Pos {
	return Pos{File: d.file, Line: lineOf(n), fields: lines}
}

func (d *nodeDecoder) entity(n ast.Node) *Entity {
	e := &Entity{}
	lines, _ := d.mapping(n, "entity", map[string]func(ast.Node){
		"name":        func(v ast.Node) { e.Name = d.str(v, "entity name") },
		"join_keys":   func(v ast.Node) { e.JoinKeys = d.strs(v, "entity join_keys") },
		"description": func(v ast.Node) { e.Description = d.str(v, "entity description") },
	})
	e.Pos = d.pos(n, lines)
	return e
}

func (d *nodeDecoder) source(n ast.Node) *Source {
	s := &Source{}
	lines, _ := d.mapping(n, "source", map[string]func(ast.Node){
		"name":        func(v ast.Node) { s.Name = d.str(v, "source name") },
		"format":      func(v ast.Node) { s.Format = d.str(v, "source format") },
		"path":        func(v ast.Node) { s.Path = d.str(v, "source path") },
		"timestamp":   func(v ast.Node) { s.Timestamp = d.str(v, "source timestamp") },
		"ready":       func(v ast.Node) { s.Ready = d.ready(v) },
		"description": func(v ast.Node) { s.Description = d.str(v, "source description") },
	})
	s.Pos = d.pos(n, lines)
	return s
}

// duration decodes a duration scalar; a bad one is reported and decodes as zero.
func (d *nodeDecoder) duration(n ast.Node, what string) Duration {
	txt := d.str(n, what)
	if txt == "" {
		return 0
	}
	v, err := ParseDuration(txt)
	if err != nil {
		d.add(n, "%s: %v", what, err)
		return 0
	}
	return v
}

func (d *nodeDecoder) featureSet(n ast.Node) *FeatureSet {
	fs := &FeatureSet{}
	lines, _ := d.mapping(n, "feature set", map[string]func(ast.Node){
		"name":   func(v ast.Node) { fs.Name = d.str(v, "feature set name") },
		"entity": func(v ast.Node) { fs.Entity = d.str(v, "feature set entity") },
		"source": func(v ast.Node) { fs.Source = d.str(v, "feature set source") },
		"ttl":    func(v ast.Node) { fs.TTL = d.duration(v, "feature set ttl") },
		"where":  func(v ast.Node) { fs.Where = d.str(v, "feature set where") },
		"windows": func(v ast.Node) {
			d.seq(v, "feature set windows", func(w ast.Node) {
				if dur := d.duration(w, "feature set window"); dur > 0 {
					fs.Windows = append(fs.Windows, dur)
				} else if !isNull(w) {
					d.add(w, "feature set window: must be positive, e.g. 1d or 7d")
				}
			})
		},
		"slide": func(v ast.Node) { fs.Slide = d.duration(v, "feature set slide") },
		"features": func(v ast.Node) {
			d.seq(v, "features", func(n ast.Node) { fs.Features = append(fs.Features, d.feature(n, "feature")) })
		},
		"derived": func(v ast.Node) {
			d.seq(v, "derived", func(n ast.Node) { fs.Derived = append(fs.Derived, d.feature(n, "derived feature")) })
		},
		"checks":      func(v ast.Node) { fs.Checks = d.checks(v, "feature set checks") },
		"schedule":    func(v ast.Node) { fs.Schedule = d.schedule(v, "feature set schedule") },
		"materialize": func(v ast.Node) { fs.Materialize = d.materialize(v) },
		"description": func(v ast.Node) { fs.Description = d.str(v, "feature set description") },
	})
	fs.Pos = d.pos(n, lines)
	return fs
}

func (d *nodeDecoder) feature(n ast.Node, what string) *Feature {
	f := &Feature{}
	fields := map[string]func(ast.Node){
		"name":   func(v ast.Node) { f.Name = d.str(v, what+" name") },
		"type":   func(v ast.Node) { f.Type = Type(d.str(v, what+" type")) },
		"expr":   func(v ast.Node) { f.Expr = d.str(v, what+" expr") },
		"checks": func(v ast.Node) { f.Checks = d.checks(v, what+" checks") },
	}
	if what == "feature" {
		fields["aggs"] = func(v ast.Node) {
			for _, a := range d.strs(v, what+" aggs") {
				f.Aggs = append(f.Aggs, Agg(a))
			}
		}
	}
	lines, _ := d.mapping(n, what, fields)
	f.Pos = d.pos(n, lines)
	return f
}

func (d *nodeDecoder) service(n ast.Node) *FeatureService {
	s := &FeatureService{}
	lines, _ := d.mapping(n, "feature service", map[string]func(ast.Node){
		"name":        func(v ast.Node) { s.Name = d.str(v, "feature service name") },
		"features":    func(v ast.Node) { s.Features = d.strs(v, "feature service features") },
		"description": func(v ast.Node) { s.Description = d.str(v, "feature service description") },
	})
	s.Pos = d.pos(n, lines)
	return s
}

// DecodeFeaturesJSON reads the catalog's stored form.
func DecodeFeaturesJSON(data []byte) (*Features, error) {
	f := &Features{}
	if err := json.Unmarshal(data, f); err != nil {
		return nil, fmt.Errorf("decode feature definitions: %w", err)
	}
	f.ensureDefaults()
	if ps := f.Validate(); len(ps) > 0 {
		return nil, fmt.Errorf("stored feature definitions are invalid: %w", ps)
	}
	return f, nil
}
