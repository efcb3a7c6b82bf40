package tune

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Distribution is the range a parameter is drawn from. Samplers work on a
// float64 "internal representation" of every value: the value itself for
// floats and ints, the index of the choice for categoricals.
//
// The three implementations are FloatDist, IntDist and CategoricalDist; the
// interface is closed (its unexported method keeps other types out) because
// samplers and storages must know every kind.
type Distribution interface {
	// Validate reports every problem of the distribution at once (low > high, ...).
	Validate() error
	// ToInternal converts an external value (float64, int, string) to its internal representation.
	ToInternal(v any) (float64, error)
	// ToExternal converts an internal value back: float64, int or string.
	ToExternal(x float64) any
	// Single reports a distribution with exactly one possible value.
	Single() bool
	// Contains reports whether the internal value x is a possible value.
	Contains(x float64) bool

	kind() string
}

// FloatDist is a float range [Low, High]. Log samples on a log scale (Low > 0);
// Step > 0 restricts values to Low + k*Step (not with Log, as in Optuna).
type FloatDist struct {
	Low, High float64
	Log       bool
	Step      float64
}

// IntDist is an integer range [Low, High] in steps of Step (0 means 1). Log
// samples on a log scale (Low >= 1, Step 1).
type IntDist struct {
	Low, High int
	Log       bool
	Step      int
}

// CategoricalDist is a choice among strings; the internal value is the index.
type CategoricalDist struct {
	Choices []string
}

var (
	_ Distribution = FloatDist{}
	_ Distribution = IntDist{}
	_ Distribution = CategoricalDist{}
)

func problems(ps []string) error {
	if len(ps) == 0 {
		return nil
	}
	return errors.New(strings.Join(ps, "; "))
}

// Validate implements Distribution.
func (d FloatDist) Validate() error {
	var ps []string
	if math.IsNaN(d.Low) || math.IsInf(d.Low, 0) || math.IsNaN(d.High) || math.IsInf(d.High, 0) {
		ps = append(ps, fmt.Sprintf("float range [%v, %v] is not finite", d.Low, d.High))
	} else if d.Low > d.High {
		ps = append(ps, fmt.Sprintf("float range low %v > high %v", d.Low, d.High))
	}
	if d.Log && d.Low <= 0 {
		ps = append(ps, fmt.Sprintf("log float range needs low > 0, got %v", d.Low))
	}
	if d.Step < 0 || math.IsNaN(d.Step) || math.IsInf(d.Step, 0) {
		ps = append(ps, fmt.Sprintf("float step must be a positive number, got %v", d.Step))
	}
	if d.Log && d.Step != 0 {
		ps = append(ps, "float step cannot be combined with log")
	}
	return problems(ps)
}

// high is the largest value reachable with the step.
func (d FloatDist) high() float64 {
	if d.Step <= 0 {
		return d.High
	}
	n := math.Floor((d.High-d.Low)/d.Step + 1e-9)
	return d.Low + n*d.Step
}

// ToInternal implements Distribution.
func (d FloatDist) ToInternal(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case int:
		return float64(x), nil
	}
	return 0, fmt.Errorf("float parameter value %v (%T) is not a number", v, v)
}

// ToExternal implements Distribution.
func (d FloatDist) ToExternal(x float64) any { return x }

// Single implements Distribution.
func (d FloatDist) Single() bool {
	if d.Step > 0 {
		return d.high() == d.Low
	}
	return d.Low == d.High
}

// Contains implements Distribution.
func (d FloatDist) Contains(x float64) bool {
	if x < d.Low || x > d.High {
		return false
	}
	if d.Step > 0 {
		k := (x - d.Low) / d.Step
		return math.Abs(k-math.Round(k)) < 1e-8
	}
	return true
}

func (FloatDist) kind() string { return "float" }

func (d IntDist) step() int {
	if d.Step <= 0 {
		return 1
	}
	return d.Step
}

// Validate implements Distribution.
func (d IntDist) Validate() error {
	var ps []string
	if d.Low > d.High {
		ps = append(ps, fmt.Sprintf("int range low %d > high %d", d.Low, d.High))
	}
	if d.Step < 0 {
		ps = append(ps, fmt.Sprintf("int step must be positive, got %d", d.Step))
	}
	if d.Log && d.Low < 1 {
		ps = append(ps, fmt.Sprintf("log int range needs low >= 1, got %d", d.Low))
	}
	if d.Log && d.Step > 1 {
		ps = append(ps, "int step cannot be combined with log")
	}
	return problems(ps)
}

// high is the largest value reachable with the step.
func (d IntDist) high() int { return d.Low + (d.High-d.Low)/d.step()*d.step() }

// ToInternal implements Distribution.
func (d IntDist) ToInternal(v any) (float64, error) {
	switch x := v.(type) {
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case float64:
		if x == math.Trunc(x) {
			return x, nil
		}
	}
	return 0, fmt.Errorf("int parameter value %v (%T) is not an integer", v, v)
}

// ToExternal implements Distribution.
func (d IntDist) ToExternal(x float64) any { return int(math.Round(x)) }

// Single implements Distribution.
func (d IntDist) Single() bool { return d.high() == d.Low }

// Contains implements Distribution.
func (d IntDist) Contains(x float64) bool {
	if x != math.Trunc(x) || x < float64(d.Low) || x > float64(d.High) {
		return false
	}
	return (int(x)-d.Low)%d.step() == 0
}

func (IntDist) kind() string { return "int" }

// Validate implements Distribution.
func (d CategoricalDist) Validate() error {
	var ps []string
	if len(d.Choices) == 0 {
		ps = append(ps, "categorical has no choices")
	}
	seen := make(map[string]bool, len(d.Choices))
	for _, c := range d.Choices {
		if seen[c] {
			ps = append(ps, fmt.Sprintf("categorical choice %q is repeated", c))
		}
		seen[c] = true
	}
	return problems(ps)
}

// ToInternal implements Distribution.
func (d CategoricalDist) ToInternal(v any) (float64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("categorical parameter value %v (%T) is not a string", v, v)
	}
	i := slices.Index(d.Choices, s)
	if i < 0 {
		return 0, fmt.Errorf("categorical value %q is not one of %q", s, d.Choices)
	}
	return float64(i), nil
}

// ToExternal implements Distribution.
func (d CategoricalDist) ToExternal(x float64) any {
	i := int(x)
	if i < 0 || i >= len(d.Choices) {
		return ""
	}
	return d.Choices[i]
}

// Single implements Distribution.
func (d CategoricalDist) Single() bool { return len(d.Choices) == 1 }

// Contains implements Distribution.
func (d CategoricalDist) Contains(x float64) bool {
	return x == math.Trunc(x) && x >= 0 && int(x) < len(d.Choices)
}

func (CategoricalDist) kind() string { return "categorical" }

// DistEqual reports whether two distributions are the same range (samplers
// treat a parameter whose distribution changed between trials as a new one).
func DistEqual(a, b Distribution) bool {
	switch x := a.(type) {
	case FloatDist:
		y, ok := b.(FloatDist)
		return ok && x == y
	case IntDist:
		y, ok := b.(IntDist)
		return ok && x.Low == y.Low && x.High == y.High && x.Log == y.Log && x.step() == y.step()
	case CategoricalDist:
		y, ok := b.(CategoricalDist)
		return ok && slices.Equal(x.Choices, y.Choices)
	}
	return false
}

// distJSON is the stored form of a distribution (version 1, the "v" field).
type distJSON struct {
	V       int      `json:"v"`
	Type    string   `json:"type"`
	Low     float64  `json:"low,omitempty"`
	High    float64  `json:"high,omitempty"`
	Log     bool     `json:"log,omitempty"`
	Step    float64  `json:"step,omitempty"`
	Choices []string `json:"choices,omitempty"`
}

// MarshalDistribution encodes d as JSON, the form storages keep.
func MarshalDistribution(d Distribution) ([]byte, error) {
	j := distJSON{V: 1, Type: d.kind()}
	switch x := d.(type) {
	case FloatDist:
		j.Low, j.High, j.Log, j.Step = x.Low, x.High, x.Log, x.Step
	case IntDist:
		j.Low, j.High, j.Log, j.Step = float64(x.Low), float64(x.High), x.Log, float64(x.Step)
	case CategoricalDist:
		j.Choices = x.Choices
	}
	return json.Marshal(j)
}

// UnmarshalDistribution decodes what MarshalDistribution wrote.
func UnmarshalDistribution(b []byte) (Distribution, error) {
	var j distJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("decode distribution: %w", err)
	}
	if j.V != 1 {
		return nil, fmt.Errorf("decode distribution: version %d, this binary knows 1", j.V)
	}
	switch j.Type {
	case "float":
		return FloatDist{Low: j.Low, High: j.High, Log: j.Log, Step: j.Step}, nil
	case "int":
		return IntDist{Low: int(j.Low), High: int(j.High), Log: j.Log, Step: int(j.Step)}, nil
	case "categorical":
		return CategoricalDist{Choices: j.Choices}, nil
	}
	return nil, fmt.Errorf("decode distribution: unknown type %q", j.Type)
}

// Param is one named dimension of a search space.
type Param struct {
	Name string
	Dist Distribution
}

// Space is a search space: named distributions in a fixed order (the order
// parameters are suggested in). The training spec's `space:` maps onto it.
type Space []Param

// Validate reports every problem at once, one per line, naming the parameter.
func (s Space) Validate() error {
	var ps []string
	seen := make(map[string]bool, len(s))
	for _, p := range s {
		if p.Name == "" {
			ps = append(ps, "a parameter has no name")
		}
		if seen[p.Name] {
			ps = append(ps, fmt.Sprintf("parameter %q is declared twice", p.Name))
		}
		seen[p.Name] = true
		if p.Dist == nil {
			ps = append(ps, fmt.Sprintf("parameter %q has no distribution", p.Name))
			continue
		}
		if err := p.Dist.Validate(); err != nil {
			ps = append(ps, fmt.Sprintf("parameter %q: %v", p.Name, err))
		}
	}
	if len(ps) > 0 {
		return errors.New(strings.Join(ps, "\n"))
	}
	return nil
}

// Suggest draws every parameter of the space in t, in order, and returns
// them by name (float64, int or string values).
func (s Space) Suggest(t *Trial) (map[string]any, error) {
	out := make(map[string]any, len(s))
	for _, p := range s {
		v, err := t.Suggest(p.Name, p.Dist)
		if err != nil {
			return nil, err
		}
		out[p.Name] = v
	}
	return out, nil
}
