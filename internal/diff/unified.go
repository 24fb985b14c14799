// The line-matching algorithm of this file is Go's internal/diff
// (src/internal/diff/diff.go, Copyright 2022 The Go Authors, BSD-style
// license in GO_LICENSE), changed to return hunks instead of text so that
// they can be annotated and rendered as text, markdown or JSON.

package diff

import (
	"sort"
	"strings"
)

// Hunk is one region of a unified diff.
type Hunk struct {
	OldStart, OldCount int
	NewStart, NewCount int
	// Lines are the hunk's lines, each starting with ' ', '-' or '+'
	// (without the trailing newline).
	Lines []string `json:"lines"`
	// Services are the service ports whose chains the hunk's lines name.
	Services []string `json:"services,omitempty"`
}

// pair is a pair of line indexes of the old and new side.
type pair struct{ x, y int }

// contextLines is the number of unchanged lines around changes.
const contextLines = 3

// Unified returns the hunks of an anchored diff of old and new (nil when
// equal). It runs in O(n log n): it matches the lines that appear once on
// each side (the "anchors") and expands the matches, so no input can make it
// quadratic.
func Unified(old, new string) []Hunk {
	if old == new {
		return nil
	}
	x := splitLines(old)
	y := splitLines(new)
	var (
		hunks []Hunk
		done  pair
		chunk pair
		count pair
		ctext []string
	)
	for _, m := range tgs(x, y) {
		if m.x < done.x {
			continue
		}
		start := m
		for start.x > done.x && start.y > done.y && x[start.x-1] == y[start.y-1] {
			start.x--
			start.y--
		}
		end := m
		for end.x < len(x) && end.y < len(y) && x[end.x] == y[end.y] {
			end.x++
			end.y++
		}
		for _, s := range x[done.x:start.x] {
			ctext = append(ctext, "-"+s)
			count.x++
		}
		for _, s := range y[done.y:start.y] {
			ctext = append(ctext, "+"+s)
			count.y++
		}
		const C = contextLines
		if (end.x < len(x) || end.y < len(y)) &&
			(end.x-start.x < C || (len(ctext) > 0 && end.x-start.x < 2*C)) {
			for _, s := range x[start.x:end.x] {
				ctext = append(ctext, " "+s)
				count.x++
				count.y++
			}
			done = end
			continue
		}
		if len(ctext) > 0 {
			n := end.x - start.x
			if n > C {
				n = C
			}
			for _, s := range x[start.x : start.x+n] {
				ctext = append(ctext, " "+s)
				count.x++
				count.y++
			}
			done = pair{start.x + n, start.y + n}
			if count.x > 0 {
				chunk.x++
			}
			if count.y > 0 {
				chunk.y++
			}
			hunks = append(hunks, Hunk{OldStart: chunk.x, OldCount: count.x, NewStart: chunk.y, NewCount: count.y, Lines: append([]string(nil), ctext...)})
			count = pair{}
			ctext = ctext[:0]
		}
		if end.x >= len(x) && end.y >= len(y) {
			break
		}
		chunk = pair{end.x - C, end.y - C}
		for _, s := range x[chunk.x:end.x] {
			ctext = append(ctext, " "+s)
			count.x++
			count.y++
		}
		done = end
	}
	return hunks
}

// splitLines splits text into lines without their newlines.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	l := strings.Split(s, "\n")
	if l[len(l)-1] == "" {
		l = l[:len(l)-1]
	} else {
		l[len(l)-1] += " \\ No newline at end of file"
	}
	return l
}

// tgs returns the pairs of indexes of the longest common subsequence of the
// lines that appear once in x and once in y (Szymanski's Algorithm A), with
// sentinels {0,0} and {len(x),len(y)}.
func tgs(x, y []string) []pair {
	m := make(map[string]int)
	for _, s := range x {
		if c := m[s]; c > -2 {
			m[s] = c - 1
		}
	}
	for _, s := range y {
		if c := m[s]; c > -8 {
			m[s] = c - 4
		}
	}
	var xi, yi, inv []int
	for i, s := range y {
		if m[s] == -1+-4 {
			m[s] = len(yi)
			yi = append(yi, i)
		}
	}
	for i, s := range x {
		if j, ok := m[s]; ok && j >= 0 {
			xi = append(xi, i)
			inv = append(inv, j)
		}
	}
	J := inv
	n := len(xi)
	T := make([]int, n)
	L := make([]int, n)
	for i := range T {
		T[i] = n + 1
	}
	for i := 0; i < n; i++ {
		k := sort.Search(n, func(k int) bool {
			return T[k] >= J[i]
		})
		T[k] = J[i]
		L[i] = k + 1
	}
	k := 0
	for _, v := range L {
		if k < v {
			k = v
		}
	}
	seq := make([]pair, 2+k)
	seq[1+k] = pair{len(x), len(y)}
	lastj := n
	for i := n - 1; i >= 0; i-- {
		if L[i] == k && J[i] < lastj {
			seq[k] = pair{xi[i], yi[J[i]]}
			k--
		}
	}
	seq[0] = pair{0, 0}
	return seq
}
