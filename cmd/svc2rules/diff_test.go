package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDiffExitCodesAndFormats(t *testing.T) {
	dir := t.TempDir()
	old := writeFile(t, dir, "old/svc.yaml", clusterIPService)
	same := writeFile(t, dir, "same/svc.yaml", clusterIPService)
	changed := writeFile(t, dir, "new/svc.yaml", strings.Replace(clusterIPService, "10.244.1.5", "10.244.1.6", 1))
	invalid := writeFile(t, dir, "bad/svc.yaml", strings.Replace(clusterIPService, "name: web\n", "name: Web_1\n", 1))
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"no change", []string{"diff", old, same}, 0, "no change", ""},
		{"no change, directories", []string{"diff", dir + "/old", dir + "/same"}, 0, "no change", ""},
		{"change", []string{"diff", old, changed}, 1, "endpoints added: 10.244.1.6:8080", ""},
		{"change markdown", []string{"diff", old, changed, "-o", "markdown"}, 1, "| ~ | `demo/web:http` TCP |", ""},
		{"change json", []string{"diff", old, changed, "-o", "json"}, 1, `"change": "changed"`, ""},
		{"stdin as OLD", []string{"diff", "-", changed}, 1, "--- -\n+++ " + changed, ""},
		{"node flags", []string{"diff", old, changed, "--node-name", "node-x", "--ip-family", "ipv4"}, 1, "node node-x", ""},
		{"invalid NEW", []string{"diff", old, invalid}, 2, "", "NEW: " + invalid + ":1 (document 1): Service demo/Web_1: metadata.name"},
		{"missing OLD", []string{"diff", dir + "/nope", changed}, 2, "", "OLD: "},
		{"one argument", []string{"diff", old}, 2, "", "give OLD and NEW"},
		{"three arguments", []string{"diff", old, same, changed}, 2, "", "give OLD and NEW"},
		{"bad format", []string{"diff", old, same, "-o", "sarif"}, 2, "", "-o must be one of text, markdown, json"},
		{"bad flag value", []string{"diff", old, same, "--ip-family", "ipv5"}, 2, "", "--ip-family"},
		{"stdin twice", []string{"diff", "-", "-"}, 2, "", "cannot both read stdin"},
		{"vs-backend", []string{"diff", "--vs-backend", "nft", old}, 1, "svc2rules diff: iptables → nft", ""},
		{"vs-backend ipvs", []string{"diff", "--backend", "nft", "--vs-backend", "ipvs", old}, 1, "--- nft\n+++ ipvs", ""},
		{"vs-backend two paths", []string{"diff", "--vs-backend", "nft", old, same}, 2, "", "exactly one PATH"},
		{"vs-backend itself", []string{"diff", "--vs-backend", "iptables", old}, 2, "", "is the --backend itself"},
		{"vs-backend unknown", []string{"diff", "--vs-backend", "pf", old}, 2, "", "--backend must be"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stdin := ""
			if strings.Contains(tc.name, "stdin") {
				stdin = clusterIPService
			}
			r := runCmd(t, stdin, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stdout, tc.stdout) || !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", r.code, tc.code, r.stdout, r.stderr)
			}
			if tc.code >= 2 && r.stdout != "" {
				t.Errorf("error with output on stdout:\n%s", r.stdout)
			}
		})
	}
}

func TestDiffJSONParses(t *testing.T) {
	dir := t.TempDir()
	old := writeFile(t, dir, "old.yaml", clusterIPService)
	changed := writeFile(t, dir, "new.yaml", strings.Replace(clusterIPService, "port: 80\n", "port: 81\n", 1))
	r := runCmd(t, "", "diff", old, changed, "-o", "json")
	var v struct {
		Mode  string
		Ports []struct {
			Service, Change string
			Fields          []string
		}
		Rules struct {
			Added, Removed int
			Chains         []struct{ Name, Service, Role string }
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if v.Mode != "manifests" || len(v.Ports) != 1 || v.Ports[0].Fields[0] != "port: 80 → 81" || v.Rules.Added == 0 {
		t.Errorf("%+v", v)
	}
}
