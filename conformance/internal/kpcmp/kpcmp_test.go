package kpcmp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every committed nft.txt equals itself after shuffling its element lines and
// differs after dropping one rule.
func TestNFTSelf(t *testing.T) {
	files, _ := filepath.Glob("../../../golden/*/nft.txt")
	if len(files) == 0 {
		t.Skip("no golden nft files")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
		var elems, other []string
		for _, l := range lines {
			if strings.HasPrefix(l, "add element") {
				elems = append(elems, l)
			} else {
				other = append(other, l)
			}
		}
		for i, j := 0, len(elems)-1; i < j; i, j = i+1, j-1 {
			elems[i], elems[j] = elems[j], elems[i]
		}
		shuffled := strings.Join(append(other, elems...), "\n") + "\n"
		if eq, d, err := NFT(text, shuffled); err != nil || !eq {
			t.Fatalf("%s: reordered elements compare unequal: %v\n%s", f, err, d)
		}
		for i, l := range other {
			if strings.HasPrefix(l, "add rule") {
				broken := strings.Join(append(append([]string{}, other[:i]...), other[i+1:]...), "\n") + "\n" + strings.Join(elems, "\n") + "\n"
				if eq, _, _ := NFT(text, broken); eq {
					t.Fatalf("%s: dropping %q compares equal", f, l)
				}
				break
			}
		}
	}
}
