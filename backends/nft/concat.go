package nft

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// concat is knftables.Concat (the words of a rule, space-separated, none
// after "@"; a []string adds its words; numbers in decimal), with the
// integers written by strconv instead of fmt. Tested equal to knftables.
func concat(args ...any) string {
	n := 0
	for _, arg := range args {
		switch x := arg.(type) {
		case string:
			n += len(x) + 1
		case []string:
			for _, s := range x {
				n += len(s) + 1
			}
		default:
			n += 12
		}
	}
	b := &strings.Builder{}
	b.Grow(n)
	var needSpace, wroteAt bool
	for _, arg := range args {
		switch x := arg.(type) {
		case string:
			if needSpace {
				b.WriteByte(' ')
			}
			b.WriteString(x)
			wroteAt = (x == "@")
		case []string:
			for _, s := range x {
				if needSpace {
					b.WriteByte(' ')
				}
				b.WriteString(s)
				wroteAt = (s == "@")
				needSpace = b.Len() > 0 && !wroteAt
			}
		case int:
			if needSpace {
				b.WriteByte(' ')
			}
			b.WriteString(strconv.Itoa(x))
		case uint, int16, uint16, int32, uint32, int64, uint64:
			if needSpace {
				b.WriteByte(' ')
			}
			fmt.Fprintf(b, "%d", x)
		default:
			if needSpace {
				b.WriteByte(' ')
			}
			fmt.Fprintf(b, "%s", x)
		}
		needSpace = b.Len() > 0 && !wroteAt
	}
	return b.String()
}

// sortStrings sorts keys as sort.Strings does.
func sortStrings(keys []string) {
	sortByKey(keys, func(s string) string { return s })
}

// sortByKey sorts xs by key(x) in sort.Strings order, comparing first the
// keys' first 16 bytes as numbers, zero-padded (where padding meets a byte,
// the shorter key is a prefix of the other, so the order is the keys'
// order; a tie compares the keys).
func sortByKey[T any](xs []T, key func(T) string) {
	type keyed struct {
		k1, k2 uint64
		i      int
	}
	keys := make([]string, len(xs))
	ks := make([]keyed, len(xs))
	for i, x := range xs {
		k := key(x)
		keys[i] = k
		var b [16]byte
		copy(b[:], k)
		ks[i] = keyed{beUint64(b[:8]), beUint64(b[8:]), i}
	}
	slices.SortFunc(ks, func(a, b keyed) int {
		if a.k1 != b.k1 {
			return cmp.Compare(a.k1, b.k1)
		}
		if a.k2 != b.k2 {
			return cmp.Compare(a.k2, b.k2)
		}
		return strings.Compare(keys[a.i], keys[b.i])
	})
	sorted := make([]T, len(xs))
	for j, k := range ks {
		sorted[j] = xs[k.i]
	}
	copy(xs, sorted)
}

func beUint64(b []byte) uint64 {
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}
