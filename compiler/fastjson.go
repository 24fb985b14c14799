package compiler

import (
	"bytes"
	"slices"
	"strconv"
	"unicode/utf8"
)

// fastJSONToJSON gives, for a JSON document of a JSON stream, exactly the
// bytes sigs.k8s.io/yaml.YAMLToJSON gives (JSON read as YAML 1.1 by
// go.yaml.in/yaml/v2, then json.Marshal: keys sorted, strings re-escaped,
// no spaces) without the YAML parser. ok is false where the two could
// differ or the document is unusual; the caller then takes the exact path.
// Outside the path: bytes other than printable ASCII, space and newline,
// numbers that are not integers of at most 18 digits, the escapes \/ and
// \u of a surrogate (YAML rejects both), keys longer than 1000 bytes (YAML
// bounds simple keys), space between a key and its colon, duplicate keys,
// nesting deeper than 100.
func fastJSONToJSON(doc []byte) (out []byte, ok bool) {
	for _, c := range doc {
		if (c < 0x20 && c != '\n') || c >= 0x7f {
			return nil, false
		}
	}
	p := fjParser{src: doc, out: make([]byte, 0, len(doc))}
	p.space()
	if !p.value(0) {
		return nil, false
	}
	p.space()
	if p.pos != len(p.src) {
		return nil, false
	}
	return p.out, true
}

type fjParser struct {
	src  []byte
	pos  int
	out  []byte
	ents []fyEntry
	str  []byte // scratch for unescaped strings
}

func (p *fjParser) space() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\n') {
		p.pos++
	}
}

func (p *fjParser) value(depth int) bool {
	if p.pos >= len(p.src) {
		return false
	}
	switch c := p.src[p.pos]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		s, ok := p.string()
		if !ok {
			return false
		}
		p.out = appendJSONString(p.out, s)
		return true
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.pos
		p.pos++
		for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
			p.pos++
		}
		lit := p.src[start:p.pos]
		if p.pos < len(p.src) && (p.src[p.pos] == '.' || p.src[p.pos] == 'e' || p.src[p.pos] == 'E') {
			return false
		}
		if len(lit) > 18 || (len(lit) > 1 && lit[0] == '0') || (len(lit) > 2 && lit[0] == '-' && lit[1] == '0') {
			return false
		}
		v, err := strconv.ParseInt(string(lit), 10, 64)
		if err != nil {
			return false
		}
		p.out = strconv.AppendInt(p.out, v, 10)
		return true
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if bytes.HasPrefix(p.src[p.pos:], []byte(lit)) {
				p.pos += len(lit)
				p.out = append(p.out, lit...)
				return true
			}
		}
		return false
	}
}

func (p *fjParser) object(depth int) bool {
	if depth > fyMaxDepth {
		return false
	}
	p.pos++ // {
	base := len(p.ents)
	objStart := len(p.out)
	p.space()
	if p.pos < len(p.src) && p.src[p.pos] == '}' {
		p.pos++
		p.out = append(p.out, '{', '}')
		return true
	}
	for {
		p.space()
		if p.pos >= len(p.src) || p.src[p.pos] != '"' {
			return false
		}
		kstart := p.pos
		k, ok := p.string()
		if !ok || p.pos-kstart > fyMaxKey || p.pos >= len(p.src) || p.src[p.pos] != ':' {
			return false
		}
		if len(k) > 0 && len(p.str) > 0 && &k[0] == &p.str[0] {
			k = append([]byte(nil), k...) // the scratch is reused
		}
		p.pos++
		p.space()
		vs := len(p.out)
		if !p.value(depth) {
			return false
		}
		p.ents = append(p.ents, fyEntry{key: k, start: vs, end: len(p.out)})
		p.space()
		if p.pos >= len(p.src) {
			return false
		}
		if p.src[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.src[p.pos] != '}' {
			return false
		}
		p.pos++
		break
	}
	ents := p.ents[base:]
	slices.SortFunc(ents, func(a, b fyEntry) int { return bytes.Compare(a.key, b.key) })
	for i := 1; i < len(ents); i++ {
		if bytes.Equal(ents[i-1].key, ents[i].key) {
			return false
		}
	}
	sorted := len(p.out)
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
	n := copy(p.out[objStart:], p.out[sorted:])
	p.out = p.out[:objStart+n]
	p.ents = p.ents[:base]
	return true
}

func (p *fjParser) array(depth int) bool {
	if depth > fyMaxDepth {
		return false
	}
	p.pos++ // [
	p.out = append(p.out, '[')
	p.space()
	if p.pos < len(p.src) && p.src[p.pos] == ']' {
		p.pos++
		p.out = append(p.out, ']')
		return true
	}
	for {
		p.space()
		if !p.value(depth) {
			return false
		}
		p.space()
		if p.pos >= len(p.src) {
			return false
		}
		if p.src[p.pos] == ',' {
			p.pos++
			p.out = append(p.out, ',')
			continue
		}
		if p.src[p.pos] != ']' {
			return false
		}
		p.pos++
		p.out = append(p.out, ']')
		return true
	}
}

// string reads a JSON string at p.pos; s aliases the input when the string
// has no escapes, else p.str.
func (p *fjParser) string() (s []byte, ok bool) {
	start := p.pos + 1
	i := start
	for i < len(p.src) && p.src[i] != '"' && p.src[i] != '\\' && p.src[i] != '\n' {
		i++
	}
	if i < len(p.src) && p.src[i] == '"' {
		p.pos = i + 1
		return p.src[start:i], true
	}
	p.str = append(p.str[:0], p.src[start:i]...)
	for i < len(p.src) {
		c := p.src[i]
		switch c {
		case '\n': // raw line breaks are not JSON (YAML would fold them)
			return nil, false
		case '"':
			p.pos = i + 1
			return p.str, true
		case '\\':
			if i+1 >= len(p.src) {
				return nil, false
			}
			switch e := p.src[i+1]; e {
			case '"', '\\':
				p.str = append(p.str, e)
			case 'b':
				p.str = append(p.str, '\b')
			case 'f':
				p.str = append(p.str, '\f')
			case 'n':
				p.str = append(p.str, '\n')
			case 'r':
				p.str = append(p.str, '\r')
			case 't':
				p.str = append(p.str, '\t')
			case 'u':
				if i+6 > len(p.src) {
					return nil, false
				}
				v, err := strconv.ParseUint(string(p.src[i+2:i+6]), 16, 32)
				if err != nil || (v >= 0xd800 && v <= 0xdfff) {
					return nil, false
				}
				p.str = utf8.AppendRune(p.str, rune(v))
				i += 4
			default: // \/ and anything else
				return nil, false
			}
			i += 2
		default:
			p.str = append(p.str, c)
			i++
		}
	}
	return nil, false
}
