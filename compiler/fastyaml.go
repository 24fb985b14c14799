package compiler

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// fastYAMLToJSON converts the common subset of YAML that Kubernetes
// manifests use into exactly the bytes sigs.k8s.io/yaml.YAMLToJSON gives
// (go.yaml.in/yaml/v2's YAML 1.1 resolution, then json.Marshal: keys sorted,
// HTML-escaped strings), in one pass and without the intermediate
// map[interface{}]interface{}. ok is false for anything outside the subset;
// the caller then takes the exact path (YAMLToJSON), which also produces
// the error of invalid input. The subset:
//
//   - block mappings and block sequences (also a sequence at its key's
//     indentation), indented with spaces, one entry per line;
//   - plain scalars on one line (strings, YAML 1.1 booleans and nulls,
//     integers; floats and timestamps are left to the exact path), single-
//     and double-quoted scalars on one line (simple escapes only), the
//     empty flow collections [] and {};
//   - comments and blank lines.
//
// Not in it (ok false): tabs, CR, control and non-ASCII bytes, anchors,
// aliases, tags, block scalars (| >), multi-line scalars, flow collections
// with content, complex keys, duplicate keys, keys that are not strings,
// merge keys, directives and document markers, nesting deeper than 100.
func fastYAMLToJSON(doc []byte) (out []byte, ok bool) {
	for _, c := range doc {
		if (c < 0x20 && c != '\n') || c >= 0x7f {
			return nil, false
		}
	}
	p := fyParser{src: doc, out: make([]byte, 0, len(doc)+len(doc)/4)}
	p.next()
	if p.eof {
		return nil, false
	}
	if !p.block() || !p.eof || p.bad {
		return nil, false
	}
	return p.out, true
}

// fyParser is the state of fastYAMLToJSON: the current line and the JSON
// written so far.
type fyParser struct {
	src []byte
	pos int // start of the line after the current one
	// The current line: its content is src[start+indent : end].
	start, end, indent int
	eof, bad           bool

	out   []byte
	ents  []fyEntry
	depth int
}

// fyEntry is one mapping entry: its key and where its value's JSON is in out.
type fyEntry struct {
	key        []byte
	start, end int
}

const fyMaxDepth = 100

// fyMaxKey is below the 1024 characters YAML allows a simple key.
const fyMaxKey = 1000

// next moves to the next line holding content (blank and comment lines are
// skipped). A document marker or directive makes the input unsupported.
func (p *fyParser) next() {
	for p.pos < len(p.src) {
		start := p.pos
		end := bytes.IndexByte(p.src[start:], '\n')
		if end < 0 {
			end = len(p.src)
			p.pos = end
		} else {
			end += start
			p.pos = end + 1
		}
		i := start
		for i < end && p.src[i] == ' ' {
			i++
		}
		if i == end || p.src[i] == '#' {
			continue
		}
		if i == start && end-start >= 3 {
			if l := p.src[start:end]; (l[0] == '-' || l[0] == '.') && l[1] == l[0] && l[2] == l[0] && (len(l) == 3 || l[3] == ' ') {
				p.bad = true
			}
		}
		if p.src[i] == '%' {
			p.bad = true
		}
		p.start, p.end, p.indent = start, end, i-start
		return
	}
	p.eof = true
}

// text is the current line's content (from its indentation on).
func (p *fyParser) text() []byte { return p.src[p.start+p.indent : p.end] }

// isSeqEntry says whether t starts a block sequence entry ("-" then space or end).
func isSeqEntry(t []byte) bool {
	return len(t) > 0 && t[0] == '-' && (len(t) == 1 || t[1] == ' ')
}

// block parses the collection starting on the current line (a mapping or a
// sequence at the line's indentation).
func (p *fyParser) block() bool {
	if p.depth++; p.depth > fyMaxDepth {
		return false
	}
	defer func() { p.depth-- }()
	if isSeqEntry(p.text()) {
		return p.sequence(p.indent)
	}
	return p.mapping(p.indent)
}

// mapping parses a block mapping whose keys are at indentation n, the first
// on the current line, and writes it as a JSON object with sorted keys.
func (p *fyParser) mapping(n int) bool {
	base := len(p.ents)
	mapStart := len(p.out)
	for {
		if p.bad {
			return false
		}
		key, rest, isKey := p.key(p.text())
		if isKey != 1 {
			return false
		}
		vs := len(p.out)
		rest = trimSpaceLeft(rest)
		if len(rest) == 0 || rest[0] == '#' {
			p.next()
			switch {
			case !p.eof && p.indent > n:
				if !p.block() {
					return false
				}
			case !p.eof && p.indent == n && isSeqEntry(p.text()):
				if p.depth++; p.depth > fyMaxDepth {
					return false
				}
				ok := p.sequence(n)
				p.depth--
				if !ok {
					return false
				}
			default:
				p.out = append(p.out, "null"...)
			}
		} else {
			if !p.inline(rest) {
				return false
			}
			p.next()
			if !p.eof && p.indent > n {
				return false
			}
		}
		p.ents = append(p.ents, fyEntry{key: key, start: vs, end: len(p.out)})
		if p.eof || p.indent < n {
			break
		}
		if p.indent > n {
			return false
		}
	}
	ents := p.ents[base:]
	slices.SortFunc(ents, func(a, b fyEntry) int { return bytes.Compare(a.key, b.key) })
	for i := 1; i < len(ents); i++ {
		if bytes.Equal(ents[i-1].key, ents[i].key) {
			return false
		}
	}
	// Write the sorted object after the values, then move it into place.
	objStart := len(p.out)
	p.out = append(p.out, '{')
	for i, e := range ents {
		if i > 0 {
			p.out = append(p.out, ',')
		}
		p.out = appendJSONString(p.out, e.key)
		p.out = append(p.out, ':')
		p.out = append(p.out, p.out[e.start:e.end]...)
	}
	p.out = append(p.out, '}')
	n2 := copy(p.out[mapStart:], p.out[objStart:])
	p.out = p.out[:mapStart+n2]
	p.ents = p.ents[:base]
	return true
}

// sequence parses a block sequence whose entries are at indentation n, the
// first on the current line.
func (p *fyParser) sequence(n int) bool {
	p.out = append(p.out, '[')
	first := true
	for !p.eof && p.indent == n && isSeqEntry(p.text()) {
		if p.bad {
			return false
		}
		if !first {
			p.out = append(p.out, ',')
		}
		first = false
		t := p.text()[1:]
		k := len(t) - len(trimSpaceLeft(t))
		rest := t[k:]
		switch {
		case len(rest) == 0 || rest[0] == '#':
			p.next()
			if !p.eof && p.indent > n {
				if !p.block() {
					return false
				}
			} else {
				p.out = append(p.out, "null"...)
			}
		case isSeqEntry(rest):
			return false
		default:
			if _, _, isKey := p.key(rest); isKey == 1 {
				// "- key: value": a mapping indented at the key's column.
				p.indent = n + 1 + k
				if p.depth++; p.depth > fyMaxDepth {
					return false
				}
				ok := p.mapping(p.indent)
				p.depth--
				if !ok {
					return false
				}
			} else if isKey < 0 {
				return false
			} else {
				if !p.inline(rest) {
					return false
				}
				p.next()
				if !p.eof && p.indent > n {
					return false
				}
			}
		}
		if !p.eof && p.indent > n {
			return false
		}
	}
	p.out = append(p.out, ']')
	return !p.bad
}

// key splits "key: rest" (rest starts after the colon). isKey is 1 for a
// supported key, 0 when t is not a mapping entry (a scalar), -1 when it
// is outside the subset.
func (p *fyParser) key(t []byte) (key, rest []byte, isKey int) {
	if len(t) == 0 {
		return nil, nil, -1
	}
	switch t[0] {
	case '"', '\'':
		s, after, ok := quoted(t)
		if !ok {
			return nil, nil, -1
		}
		if len(after) == 0 || after[0] != ':' {
			return nil, nil, 0
		}
		if len(after) > 1 && after[1] != ' ' {
			return nil, nil, -1
		}
		if len(t)-len(after) > fyMaxKey {
			return nil, nil, -1
		}
		return s, after[1:], 1
	case '-':
		if len(t) == 1 || t[1] == ' ' {
			return nil, nil, -1
		}
	case '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '%', '@', '`':
		return nil, nil, 0
	}
	for i := 0; i < len(t); i++ {
		switch t[i] {
		case ':':
			if i+1 == len(t) || t[i+1] == ' ' {
				k := t[:i]
				if k[len(k)-1] == ' ' || len(k) > fyMaxKey || string(k) == "<<" {
					return nil, nil, -1
				}
				if kind, _ := resolvePlain(k); kind != plainString {
					return nil, nil, -1
				}
				return k, t[i+1:], 1
			}
		case '#':
			if t[i-1] == ' ' {
				return nil, nil, 0
			}
		}
	}
	return nil, nil, 0
}

// inline writes the JSON of a value written on its key's (or dash's) line.
func (p *fyParser) inline(v []byte) bool {
	switch v[0] {
	case '"', '\'':
		s, after, ok := quoted(v)
		if !ok || !restIsComment(after) {
			return false
		}
		p.out = appendJSONString(p.out, s)
		return true
	case '[', '{':
		if len(v) < 2 || v[1] != v[0]+2 || !restIsComment(v[2:]) {
			return false
		}
		p.out = append(p.out, v[0], v[1])
		return true
	case '-':
		if len(v) == 1 || v[1] == ' ' {
			return false
		}
	case '?', ':', ',', ']', '}', '#', '&', '*', '!', '|', '>', '%', '@', '`':
		return false
	}
	end := len(v)
	for i := 1; i < len(v); i++ {
		if v[i] == '#' && v[i-1] == ' ' {
			end = i
			break
		}
	}
	s := v[:end]
	for len(s) > 0 && s[len(s)-1] == ' ' {
		s = s[:len(s)-1]
	}
	if s[len(s)-1] == ':' || bytes.Contains(s, []byte(": ")) {
		return false
	}
	kind, tok := resolvePlain(s)
	switch kind {
	case plainString:
		p.out = appendJSONString(p.out, s)
	case plainToken:
		p.out = append(p.out, tok...)
	case plainInt:
		p.out = append(p.out, tok...)
	default:
		return false
	}
	return true
}

// restIsComment says whether what follows a quoted scalar or [] / {} is
// only spaces and a comment.
func restIsComment(r []byte) bool {
	t := trimSpaceLeft(r)
	return len(t) == 0 || (t[0] == '#' && len(t) < len(r))
}

func trimSpaceLeft(b []byte) []byte {
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	return b
}

// quoted reads a single- or double-quoted scalar closed on the same line;
// after is what follows the closing quote.
func quoted(t []byte) (s, after []byte, ok bool) {
	q := t[0]
	var buf []byte // only when an escape changes the text
	for i := 1; i < len(t); i++ {
		c := t[i]
		switch {
		case c == q && q == '\'' && i+1 < len(t) && t[i+1] == '\'':
			if buf == nil {
				buf = append([]byte(nil), t[1:i]...)
			}
			buf = append(buf, '\'')
			i++
		case c == q:
			if buf == nil {
				return t[1:i], t[i+1:], true
			}
			return buf, t[i+1:], true
		case c == '\\' && q == '"':
			if i+1 >= len(t) {
				return nil, nil, false
			}
			var e byte
			switch t[i+1] {
			case '0':
				e = 0
			case 'a':
				e = 0x07
			case 'b':
				e = 0x08
			case 't':
				e = 0x09
			case 'n':
				e = 0x0a
			case 'v':
				e = 0x0b
			case 'f':
				e = 0x0c
			case 'r':
				e = 0x0d
			case 'e':
				e = 0x1b
			case ' ', '"', '\'', '\\':
				e = t[i+1]
			default:
				return nil, nil, false
			}
			if buf == nil {
				buf = append([]byte(nil), t[1:i]...)
			}
			buf = append(buf, e)
			i++
		default:
			if buf != nil {
				buf = append(buf, c)
			}
		}
	}
	return nil, nil, false
}

// plainKind is what go.yaml.in/yaml/v2 resolves a plain scalar to.
type plainKind int

const (
	plainString  plainKind = iota
	plainToken             // true, false or null
	plainInt               // an integer, written in decimal
	plainUnknown           // a float or timestamp: left to the exact path
)

// resolvePlain mirrors go.yaml.in/yaml/v2's resolve for an untagged plain
// scalar; tok is the JSON json.Marshal writes for the value.
func resolvePlain(s []byte) (plainKind, []byte) {
	if len(s) == 0 {
		return plainToken, []byte("null")
	}
	switch c := s[0]; {
	case c == '+' || c == '-' || (c >= '0' && c <= '9'):
		return resolveNumber(s)
	case c == '.':
		switch string(s) {
		case ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF":
			return plainUnknown, nil
		}
		if _, err := strconv.ParseFloat(string(s), 64); err == nil {
			return plainUnknown, nil
		}
		return plainString, nil
	case strings.IndexByte("yYnNtTfFoO~", c) >= 0:
		switch string(s) {
		case "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON":
			return plainToken, []byte("true")
		case "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF":
			return plainToken, []byte("false")
		case "~", "null", "Null", "NULL":
			return plainToken, []byte("null")
		}
	}
	return plainString, nil
}

// resolveNumber is resolve's "sign or digit" case.
func resolveNumber(s []byte) (plainKind, []byte) {
	switch string(s) {
	case "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF":
		return plainUnknown, nil
	}
	// Timestamps (YYYY-...): left to the exact path.
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 4 && i < len(s) && s[i] == '-' {
		return plainUnknown, nil
	}
	plain := strings.ReplaceAll(string(s), "_", "")
	if v, err := strconv.ParseInt(plain, 0, 64); err == nil {
		return plainInt, strconv.AppendInt(nil, v, 10)
	}
	if v, err := strconv.ParseUint(plain, 0, 64); err == nil {
		return plainInt, strconv.AppendUint(nil, v, 10)
	}
	if yamlStyleFloat(plain) {
		return plainUnknown, nil
	}
	if strings.HasPrefix(plain, "0b") {
		if v, err := strconv.ParseInt(plain[2:], 2, 64); err == nil {
			return plainInt, strconv.AppendInt(nil, v, 10)
		}
		if v, err := strconv.ParseUint(plain[2:], 2, 64); err == nil {
			return plainInt, strconv.AppendUint(nil, v, 10)
		}
	} else if strings.HasPrefix(plain, "-0b") {
		if v, err := strconv.ParseInt("-"+plain[3:], 2, 64); err == nil {
			return plainInt, strconv.AppendInt(nil, v, 10)
		}
	}
	return plainString, nil
}

// yamlStyleFloat matches ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
// (go.yaml.in/yaml/v2's float syntax).
func yamlStyleFloat(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	digits := func() int {
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - j
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	} else {
		if digits() == 0 {
			return false
		}
		if i < len(s) && s[i] == '.' {
			i++
			digits()
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// appendJSONString appends s as json.Marshal writes a string.
func appendJSONString(out, s []byte) []byte {
	for _, c := range s {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(string(s))
			return append(out, b...)
		}
	}
	out = append(out, '"')
	out = append(out, s...)
	return append(out, '"')
}
