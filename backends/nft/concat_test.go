package nft

import (
	"math/rand"
	"sort"
	"testing"

	"sigs.k8s.io/knftables"
)

// TestConcatIsKnftables: concat joins rule words exactly as knftables.Concat.
func TestConcatIsKnftables(t *testing.T) {
	words := []any{"", "@", "ip", "daddr", "{", "}", ",", "a b", 0, 7, -3, 12345, int32(5), uint16(80),
		[]string{}, []string{"@"}, []string{"a", "@", "b"}, []string{"", "x"}, []string{"x", ""}, []string{"@", ""}}
	rng := rand.New(rand.NewSource(3))
	for i := 0; i < 20000; i++ {
		args := make([]any, rng.Intn(8))
		for j := range args {
			args[j] = words[rng.Intn(len(words))]
		}
		if got, want := concat(args...), knftables.Concat(args...); got != want {
			t.Fatalf("concat(%q) = %q, knftables.Concat = %q", args, got, want)
		}
	}
}

// TestSortStrings: sortStrings orders as sort.Strings, NUL bytes and
// shared prefixes of 16 bytes and more included.
func TestSortStrings(t *testing.T) {
	alphabet := []string{"", "\x00", "a", "b", "endpoint-", "0123456789abcdef", "\xff", "."}
	rng := rand.New(rand.NewSource(4))
	for i := 0; i < 2000; i++ {
		keys := make([]string, rng.Intn(30))
		for j := range keys {
			for k := rng.Intn(6); k > 0; k-- {
				keys[j] += alphabet[rng.Intn(len(alphabet))]
			}
		}
		want := append([]string(nil), keys...)
		sort.Strings(want)
		sortStrings(keys)
		for j := range keys {
			if keys[j] != want[j] {
				t.Fatalf("sortStrings: %q, sort.Strings: %q", keys, want)
			}
		}
	}
}
