// Package csvfile explains what is wrong with the shape of a CSV file in terms a
// user can act on: the line whose number of fields differs from the header's,
// or the line holding a value. DuckDB's CSV sniffer reads a file with an
// inconsistent row as one wide column (or fails with a message meant for its
// own developers); the readers of sources, spines and training files ask this
// package instead, when DuckDB's reading of a CSV file looks wrong.
//
// The reading is Go's encoding/csv with the delimiter the header uses, so it
// agrees with DuckDB on the ordinary files users write (RFC 4180 quoting,
// blank lines skipped). Files ending in .gz are decompressed.
package csvfile

import (
	"bufio"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ErrNotFound reports that FindValue did not find the value.
var ErrNotFound = errors.New("value not found")

// FieldCountError is a line of a CSV file whose number of fields differs from
// the header's.
type FieldCountError struct {
	File   string
	Line   int // 1-based line of the file where the row starts
	Fields int // fields on that row
	Want   int // fields of the header
}

func (e *FieldCountError) Error() string {
	return fmt.Sprintf("%s line %d: %d fields, but the header has %d; every row needs one value per column (an empty field for a missing value)",
		e.File, e.Line, e.Fields, e.Want)
}

// Delimiters are the field separators Check recognises, in order of preference
// when a header holds several.
const Delimiters = ",;\t|"

// Check reads the CSV file at path and returns a *FieldCountError for its first
// row whose number of fields differs from the header's, nil when every row
// matches. A file that cannot be read or parsed is an error of another type.
func Check(path string) error {
	var err error
	scanErr := scan(path, func(r *csv.Reader, header, rec []string) bool {
		if len(rec) != len(header) {
			line, _ := r.FieldPos(0)
			err = &FieldCountError{File: path, Line: line, Fields: len(rec), Want: len(header)}
			return false
		}
		return true
	})
	if scanErr != nil {
		return scanErr
	}
	return err
}

// FindValue returns the 1-based line of the first row of the CSV file at path
// whose field in column (a header name) is exactly value; ErrNotFound (wrapped)
// when no row has it.
func FindValue(path, column, value string) (int, error) {
	line, col := 0, -1
	err := scan(path, func(r *csv.Reader, header, rec []string) bool {
		if col < 0 {
			for i, h := range header {
				if h == column {
					col = i
				}
			}
			if col < 0 {
				return false
			}
		}
		if col < len(rec) && rec[col] == value {
			line, _ = r.FieldPos(col)
			return false
		}
		return true
	})
	switch {
	case err != nil:
		return 0, err
	case col < 0:
		return 0, fmt.Errorf("%s: no column %q: %w", path, column, ErrNotFound)
	case line == 0:
		return 0, fmt.Errorf("%s: column %q has no value %q: %w", path, column, value, ErrNotFound)
	}
	return line, nil
}

// scan calls fn with every data row of the file until fn returns false.
func scan(path string, fn func(r *csv.Reader, header, rec []string) bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var in io.Reader = f
	if strings.HasSuffix(strings.ToLower(path), ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		defer zr.Close()
		in = zr
	}
	br := bufio.NewReaderSize(in, 1<<16)
	first, err := br.Peek(1 << 16)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return fmt.Errorf("%s: %w", path, err)
	}
	r := csv.NewReader(br)
	r.Comma = delimiter(first)
	r.FieldsPerRecord = -1 // the caller compares counts: a mismatch is a finding, not a failure
	r.LazyQuotes = true
	r.ReuseRecord = true
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	header = append([]string(nil), header...)
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if !fn(r, header, rec) {
			return nil
		}
	}
}

// delimiter returns the candidate delimiter occurring most often in the first
// line of data outside double quotes (',' when none does).
func delimiter(data []byte) rune {
	counts := map[rune]int{}
	quoted := false
	for _, c := range string(data) {
		if c == '"' {
			quoted = !quoted
			continue
		}
		if !quoted && (c == '\n' || c == '\r') {
			break
		}
		if !quoted && strings.ContainsRune(Delimiters, c) {
			counts[c]++
		}
	}
	best := ','
	for _, c := range Delimiters {
		if counts[c] > counts[best] {
			best = c
		}
	}
	return best
}
