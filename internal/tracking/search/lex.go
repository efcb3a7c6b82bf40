package search

import (
	"strings"

	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

type tokenKind int

const (
	tEOF tokenKind = iota
	tIdent
	tString
	tNumber
	tOp
	tKeyword
	tLParen
	tRParen
	tComma
	tSemicolon
)

// token is one lexeme. For identifiers, prefix is the part before the first dot
// ("" for a bare key) and key the unquoted rest; quoted marks a quoted key.
type token struct {
	kind   tokenKind
	text   string // keyword/op upper-cased; string and number contents
	raw    string // the source text, for messages
	pos    int
	prefix string
	key    string
	quoted bool
}

var keywords = map[string]bool{
	"AND": true, "OR": true, "LIKE": true, "ILIKE": true, "IN": true, "NOT": true,
	"IS": true, "NULL": true, "ASC": true, "DESC": true,
}

func isWordByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// lex splits s into tokens. It fails only on unterminated quotes and bytes that
// start no token.
func lex(s string) ([]token, error) {
	var out []token
	i := 0
	for i < len(s) {
		c := s[i]
		start := i
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
			continue
		case c == '(':
			out = append(out, token{kind: tLParen, raw: "(", pos: i})
			i++
		case c == ')':
			out = append(out, token{kind: tRParen, raw: ")", pos: i})
			i++
		case c == ',':
			out = append(out, token{kind: tComma, raw: ",", pos: i})
			i++
		case c == ';':
			out = append(out, token{kind: tSemicolon, raw: ";", pos: i})
			i++
		case c == '=' || c == '<' || c == '>' || c == '!':
			j := i + 1
			if j < len(s) && (s[j] == '=' || (c == '<' && s[j] == '>')) {
				j++
			}
			op := s[i:j]
			if op == "!" {
				return nil, wire.Invalidf("Invalid filter '%s'. Could not be parsed: unexpected '!' at offset %d", s, i)
			}
			if op == "==" {
				op = "="
			}
			out = append(out, token{kind: tOp, text: op, raw: s[i:j], pos: i})
			i = j
		case c == '\'':
			text, end, err := quoted(s, i, '\'')
			if err != nil {
				return nil, err
			}
			out = append(out, token{kind: tString, text: text, raw: s[start:end], pos: start})
			i = end
		case c == '"' || c == '`':
			text, end, err := quoted(s, i, c)
			if err != nil {
				return nil, err
			}
			if end < len(s) && s[end] == '.' && c == '`' {
				// `params`.key: a quoted prefix.
				tok, next, err := identAfterDot(s, start, end+1, text)
				if err != nil {
					return nil, err
				}
				out = append(out, tok)
				i = next
				continue
			}
			out = append(out, token{kind: tIdent, key: text, quoted: true, raw: s[start:end], pos: start})
			i = end
		case isDigit(c) || ((c == '-' || c == '+' || c == '.') && i+1 < len(s) && (isDigit(s[i+1]) || s[i+1] == '.')):
			j := i
			if s[j] == '-' || s[j] == '+' {
				j++
			}
			for j < len(s) && (isDigit(s[j]) || s[j] == '.') {
				j++
			}
			if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
				k := j + 1
				if k < len(s) && (s[k] == '-' || s[k] == '+') {
					k++
				}
				if k < len(s) && isDigit(s[k]) {
					for k < len(s) && isDigit(s[k]) {
						k++
					}
					j = k
				}
			}
			if j < len(s) && isWordByte(s[j]) {
				// 1abc: a word that starts with a digit.
				for j < len(s) && (isWordByte(s[j]) || s[j] == '.') {
					j++
				}
				out = append(out, token{kind: tIdent, key: s[i:j], raw: s[i:j], pos: i})
			} else {
				out = append(out, token{kind: tNumber, text: s[i:j], raw: s[i:j], pos: i})
			}
			i = j
		case isWordByte(c):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			word := s[i:j]
			if j < len(s) && s[j] == '.' {
				tok, next, err := identAfterDot(s, start, j+1, word)
				if err != nil {
					return nil, err
				}
				out = append(out, tok)
				i = next
				continue
			}
			if up := strings.ToUpper(word); keywords[up] {
				out = append(out, token{kind: tKeyword, text: up, raw: word, pos: i})
			} else {
				out = append(out, token{kind: tIdent, key: word, raw: word, pos: i})
			}
			i = j
		default:
			return nil, wire.Invalidf("Invalid filter '%s'. Could not be parsed: unexpected %q at offset %d", s, string(c), i)
		}
	}
	return out, nil
}

// identAfterDot lexes the key of "<prefix>.<key>" starting at i (just past the dot).
func identAfterDot(s string, start, i int, prefix string) (token, int, error) {
	if i < len(s) && (s[i] == '"' || s[i] == '`' || s[i] == '\'') {
		text, end, err := quoted(s, i, s[i])
		if err != nil {
			return token{}, 0, err
		}
		return token{kind: tIdent, prefix: prefix, key: text, quoted: true, raw: s[start:end], pos: start}, end, nil
	}
	j := i
	for j < len(s) && (isWordByte(s[j]) || s[j] == '.') {
		j++
	}
	return token{kind: tIdent, prefix: prefix, key: s[i:j], raw: s[start:j], pos: start}, j, nil
}

// quoted reads a string quoted with q starting at s[i] == q. A doubled quote or a
// backslash-escaped quote stands for the quote itself.
func quoted(s string, i int, q byte) (text string, end int, err error) {
	var b strings.Builder
	j := i + 1
	for j < len(s) {
		c := s[j]
		switch {
		case c == '\\' && j+1 < len(s) && s[j+1] == q:
			b.WriteByte(q)
			j += 2
		case c == q && j+1 < len(s) && s[j+1] == q:
			b.WriteByte(q)
			j += 2
		case c == q:
			return b.String(), j + 1, nil
		default:
			b.WriteByte(c)
			j++
		}
	}
	return "", 0, wire.Invalidf("Invalid filter '%s'. Could not be parsed: unterminated quote starting at offset %d", s, i)
}
