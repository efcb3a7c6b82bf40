package online

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"sync"
)

// Layout is the ordered list of features the rows of a set were written with.
// A stored row names its layout instead of its feature names, so rows stay
// small and a set can gain or lose features without its stored rows being
// rewritten: a feature a row's layout lacks reads as Missing. Backends store
// layouts next to the rows (AppendLayout) and keep them in memory.
// A Layout is immutable.
type Layout struct {
	features []string
	index    map[string]int
}

// NewLayout returns the layout of features (copied).
func NewLayout(features []string) *Layout {
	l := &Layout{features: slices.Clone(features), index: make(map[string]int, len(features))}
	for i, f := range features {
		l.index[f] = i
	}
	return l
}

// Features returns the layout's features, in stored order; do not modify them.
func (l *Layout) Features() []string { return l.features }

// AppendLayout appends the stored form of a layout: the format version, the
// number of features and each name with its length.
func AppendLayout(dst []byte, features []string) []byte {
	dst = append(dst, FormatVersion)
	dst = binary.AppendUvarint(dst, uint64(len(features)))
	for _, f := range features {
		dst = binary.AppendUvarint(dst, uint64(len(f)))
		dst = append(dst, f...)
	}
	return dst
}

// DecodeLayout decodes a layout written by AppendLayout.
func DecodeLayout(b []byte) (*Layout, error) {
	if len(b) == 0 || b[0] != FormatVersion {
		return nil, fmt.Errorf("%w: layout format %x, this binary reads version %d", ErrFormat, b[:min(len(b), 1)], FormatVersion)
	}
	b = b[1:]
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: truncated layout", ErrFormat)
	}
	b = b[w:]
	features := make([]string, n)
	for i := range features {
		l, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < l {
			return nil, fmt.Errorf("%w: truncated layout", ErrFormat)
		}
		features[i] = string(b[w : w+int(l)])
		b = b[w+int(l):]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after a layout", ErrFormat, len(b))
	}
	return NewLayout(features), nil
}

// Projection maps the features of a query onto the positions of a layout.
type Projection struct {
	// Pos[f] is the layout position of the query's feature f; -1 when the
	// layout lacks it.
	Pos []int
	// Need[i] reports whether the query reads layout position i.
	Need []bool
}

// Project fills p for layout l and the query's features, reusing p's memory.
func (p *Projection) Project(l *Layout, features []string) {
	p.Pos = slices.Grow(p.Pos[:0], len(features))[:len(features)]
	p.Need = slices.Grow(p.Need[:0], len(l.features))[:len(l.features)]
	clear(p.Need)
	for f, name := range features {
		i, ok := l.index[name]
		if !ok {
			p.Pos[f] = -1
			continue
		}
		p.Pos[f] = i
		p.Need[i] = true
	}
}

// DecodeValues decodes b, the values of a row of layout l (AppendValue
// encodings in layout order, nothing after them), and stores those p asks for
// into out, in query order; out's other entries are left as they are. Strings
// the query does not read are skipped without being copied. scratch is memory
// for the row's values, returned for reuse.
func DecodeValues(b []byte, l *Layout, p *Projection, out, scratch []Value) ([]Value, error) {
	scratch = scratch[:0]
	for i, name := range l.features {
		v, n, err := DecodeValue(b, !p.Need[i])
		if err != nil {
			return scratch, fmt.Errorf("feature %s: %w", name, err)
		}
		scratch = append(scratch, v)
		b = b[n:]
	}
	if len(b) != 0 {
		return scratch, fmt.Errorf("%w: %d bytes after a row's values", ErrFormat, len(b))
	}
	for f, pos := range p.Pos {
		if pos >= 0 {
			out[f] = scratch[pos]
		}
	}
	return scratch, nil
}

// LayoutID is the id under which backends that share layouts between
// processes store the layout of features: FNV-64a of the names, each
// followed by a NUL (names cannot hold one), so every writer derives the same
// id without coordinating. It is part of the stored format of those backends.
func LayoutID(features []string) uint64 {
	h := fnv.New64a()
	for _, f := range features {
		_, _ = io.WriteString(h, f)
		_, _ = h.Write([]byte{0})
	}
	return h.Sum64()
}

// LayoutCache holds the layouts a process has stored or read, by set and
// LayoutID; safe for concurrent use. The zero LayoutCache is empty and
// ready. Stored layouts never change, so entries are never invalidated.
type LayoutCache struct {
	mu sync.RWMutex
	m  map[layoutCacheKey]*Layout
}

type layoutCacheKey struct {
	set string
	id  uint64
}

// Get returns the cached layout, or nil.
func (c *LayoutCache) Get(set string, id uint64) *Layout {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[layoutCacheKey{set, id}]
}

// Put caches l as the layout id of set.
func (c *LayoutCache) Put(set string, id uint64, l *Layout) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[layoutCacheKey]*Layout{}
	}
	c.m[layoutCacheKey{set, id}] = l
}

// Known reports whether the layout of features (whose LayoutID is id) is
// cached for set, so a writer stores it once per process. A cached layout of
// that id naming other features is a hash collision: ErrFormat, never a
// silently shared layout.
func (c *LayoutCache) Known(set string, id uint64, features []string) (bool, error) {
	l := c.Get(set, id)
	if l == nil {
		return false, nil
	}
	if !slices.Equal(l.features, features) {
		return false, LayoutCollision(set, id)
	}
	return true, nil
}

// LayoutCollision is the error of two feature lists of set with the same
// LayoutID.
func LayoutCollision(set string, id uint64) error {
	return fmt.Errorf("%w: layout id %016x of set %s names other features (hash collision)", ErrFormat, id, set)
}
