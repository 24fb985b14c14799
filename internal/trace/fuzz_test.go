package trace

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/svc2rules/svc2rules/internal/cli"
)

// FuzzParse feeds arbitrary text to the rule readers (iptables-save/restore,
// nft scripts and listings, ipset, ipvsadm, svc2rules' scripts and tables)
// and traces a few packets through whatever was read: no panic, no runaway,
// and every trace's paths add up to probability 1.
func FuzzParse(f *testing.F) {
	for _, b := range []string{"iptables", "nft", "ipvs", "userspace"} {
		o := compileOptions(f, b)
		res, err := cli.Compile(o, nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(res.Output)
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "kernel", "*.txt"))
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Add("*nat\n:PREROUTING ACCEPT [0:0]\n:X - [0:0]\n-A PREROUTING -j X\n-A X -j X\nCOMMIT\n")
	f.Add("table ip t {\n chain c { type nat hook prerouting priority dstnat; jump d }\n chain d { goto c }\n}\n")
	f.Add("add table ip t\nadd chain ip t c { type filter hook input priority 0 ; }\nadd rule ip t c numgen random mod 3 vmap { 0 : drop , 1 : accept }\n")
	queries := []string{
		"tcp 10.244.1.10 -> 10.96.0.10:80 pod",
		"udp 198.51.100.7 -> 192.168.0.2:30020 external",
		"tcp 192.168.0.2 -> 127.0.0.1:30020 node",
		"tcp fd00:10:244:1::77 -> [fd00:96::10]:80 pod",
	}
	f.Fuzz(func(t *testing.T, text string) {
		if len(text) > 1<<16 {
			return
		}
		oldWork, oldPaths := maxWorkVar, maxPathsVar
		maxWorkVar, maxPathsVar = 200_000, 2_000
		defer func() { maxWorkVar, maxPathsVar = oldWork, oldPaths }()
		rs := NewRuleset()
		if err := rs.Parse("fuzz", text); err != nil {
			return
		}
		for _, qs := range queries {
			r, err := Trace(rs, query(t, qs), nodeEnv())
			if err != nil {
				continue // budget exceeded: reported, not a crash
			}
			sum := 0.0
			for _, p := range r.Paths {
				if p.Verdict == "" {
					t.Fatalf("%s: a path without a verdict", qs)
				}
				sum += p.Probability
			}
			if math.Abs(sum-1) > 1e-6 {
				t.Fatalf("%s: paths add up to %v", qs, sum)
			}
			_ = Text(r)
		}
	})
}
