package demo

import (
	"bufio"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// projectFS holds the demo project: atrium.yaml and features/*.yaml, which read
// the files WriteData writes. features/rentals.yaml is the example of the data
// layer's issue, verbatim.
//
//go:embed project
var projectFS embed.FS

// ProjectFiles returns the project files' paths relative to a project directory.
func ProjectFiles() []string {
	var files []string
	_ = fs.WalkDir(projectFS, "project", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, strings.TrimPrefix(path, "project/"))
		}
		return err
	})
	sort.Strings(files)
	return files
}

// ProjectFile returns the content of one project file (a path of ProjectFiles).
func ProjectFile(name string) ([]byte, error) {
	return projectFS.ReadFile("project/" + filepath.ToSlash(name))
}

// ErrExists is returned by WriteProject when a project file is already there and
// overwriting was not asked for.
var ErrExists = errors.New("already exists")

// WriteProject writes the project files under dir. Unless overwrite is set, it
// writes nothing when any of them exists, and names every one that does.
func WriteProject(dir string, overwrite bool) ([]string, error) {
	files := ProjectFiles()
	if !overwrite {
		var errs []error
		for _, f := range files {
			if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
				errs = append(errs, fmt.Errorf("%s: %w", filepath.Join(dir, f), ErrExists))
			}
		}
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
	}
	for _, f := range files {
		data, err := ProjectFile(f)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
		if err := writeFile(path, func(w *bufio.Writer) error { _, err := w.Write(data); return err }); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// SetRange is a feature set of the demo project and the dates (inclusive, UTC)
// over which the demo computes it.
type SetRange struct {
	Set        string
	Start, End time.Time
}

// FeatureSetRanges lists the demo project's feature sets with the dates that
// cover the generated data: profiles from as far back as their ttl can reach
// (a row older than that is never served), aggregates from the day after the
// first session (the first day with a full day of events before it) to the day
// after the last session.
func (c Config) FeatureSetRanges() []SetRange {
	end := c.End()
	return []SetRange{
		{"listing_profile", c.Start.AddDate(0, 0, -90), end},
		{"listing_engagement", c.Start.AddDate(0, 0, 1), end},
		{"user_profile", c.Start.AddDate(0, 0, -365), end},
		{"user_activity", c.Start.AddDate(0, 0, 1), end},
	}
}
