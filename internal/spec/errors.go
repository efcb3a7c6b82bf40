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
	// ErrBadTime reports a time that ParseTime does not accept.
	ErrBadTime = errors.New("bad time")
)

// Problem is one thing wrong in a project file, located by file and line.
type Problem struct {
	File   string
	Line   int // 0 when the problem has no single line (a missing file, say)
	Column int // 1-based; set for YAML syntax errors, 0 otherwise
	Msg    string
	// dangling marks a reference to a name no file defines. When a file could
	// not be parsed, the name may be defined there: such problems are dropped
	// rather than reported as false errors (see parseFiles).
	dangling bool
}

func (p Problem) String() string {
	switch {
	case p.Line > 0 && p.Column > 0:
		return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Column, p.Msg)
	case p.Line > 0:
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

// addDangling records a problem with a reference to an undefined name.
func (ps *Problems) addDangling(file string, line int, format string, args ...any) {
	*ps = append(*ps, Problem{File: file, Line: line, Msg: fmt.Sprintf(format, args...), dangling: true})
}

// Err returns the problems as an error, or nil when there are none.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// yamlProblem turns a goccy/go-yaml parsing or decoding error into a Problem
// located by line and column.
func yamlProblem(file string, err error) Problem {
	var ye yaml.Error
	if errors.As(err, &ye) {
		p := Problem{File: file, Msg: ye.GetMessage()}
		var se *yaml.SyntaxError
		if errors.As(err, &se) {
			p.Msg = "YAML syntax error: " + p.Msg
		}
		if tok := ye.GetToken(); tok != nil && tok.Position != nil {
			p.Line, p.Column = tok.Position.Line, tok.Position.Column
		}
		return p
	}
	return Problem{File: file, Msg: err.Error()}
}
