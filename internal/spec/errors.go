package spec

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
)

// Sentinel errors. Callers check them with errors.Is.
var (
	// ErrUnknownFeature reports a reference to a feature, set or service that is not defined.
	ErrUnknownFeature = errors.New("unknown feature")
)

// Problem is one thing wrong in a project file, located by file and line.
type Problem struct {
	File string
	Line int // 0 when the problem has no single line (a missing file, say)
	Msg  string
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Msg)
}

// Problems is every problem found in a set of project files. Validation collects all
// of them before returning, so a user fixes a file in one pass, not one error at a time.
type Problems []Problem

// Error lists the problems one per line, sorted by file and line.
func (ps Problems) Error() string {
	sorted := append(Problems(nil), ps...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].File != sorted[j].File {
			return sorted[i].File < sorted[j].File
		}
		return sorted[i].Line < sorted[j].Line
	})
	lines := make([]string, len(sorted))
	for i, p := range sorted {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Add records a problem.
func (ps *Problems) Add(file string, line int, format string, args ...any) {
	*ps = append(*ps, Problem{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// Err returns the problems as an error, or nil when there are none.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// yamlProblem turns a goccy/go-yaml decoding error into a located Problem.
func yamlProblem(file string, err error) Problem {
	var ye yaml.Error
	if errors.As(err, &ye) {
		line := 0
		if tok := ye.GetToken(); tok != nil && tok.Position != nil {
			line = tok.Position.Line
		}
		return Problem{File: file, Line: line, Msg: ye.GetMessage()}
	}
	return Problem{File: file, Msg: err.Error()}
}
