package canon

import (
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-cmp/cmp"
)

// IPVS-mode output comes in four sections. kporacle prints them in one text
// under these headers; svc2rules prints each alone with --ipvs-section.
// The ipvsadm, ipset and addresses sections are compared as sorted lists of
// lines (blank and "#" lines dropped, runs of blanks collapsed): their order
// is the kernel's (or a Go map's), never meaningful. The iptables section is
// compared with IPTables (KUBE-IPVS-OUT-FILTER is a set there).

// IPVSSectionHeaders maps a section name (the --ipvs-section value) to its
// kporacle header line.
var IPVSSectionHeaders = map[string]string{
	"ipvsadm":   "### ipvsadm-save -n",
	"ipset":     "### ipset save",
	"addresses": "### kube-ipvs0 addresses",
	"iptables":  "### iptables-save",
}

// IPVSSections lists the section names in kporacle's order.
var IPVSSections = []string{"ipvsadm", "ipset", "addresses", "iptables"}

// SplitIPVSSections splits kporacle's ipvs output into its sections, keyed by
// section name. Text before the first header is ignored; an unknown "### "
// header is an error.
func SplitIPVSSections(text string) (map[string]string, error) {
	byHeader := map[string]string{}
	for name, h := range IPVSSectionHeaders {
		byHeader[h] = name
	}
	out := map[string]string{}
	var cur string
	var lines []string
	flush := func() {
		if cur != "" {
			out[cur] = strings.Join(lines, "\n") + "\n"
		}
	}
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if strings.HasPrefix(l, "### ") {
			name, ok := byHeader[strings.TrimSpace(l)]
			if !ok {
				return nil, fmt.Errorf("unknown section header %q", l)
			}
			flush()
			cur, lines = name, nil
			continue
		}
		if cur != "" {
			lines = append(lines, l)
		}
	}
	flush()
	return out, nil
}

// normIPVSLines is ipvscmp.norm_lines: whitespace runs collapsed, blank and
// comment lines dropped, sorted.
func normIPVSLines(text string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		l = strings.Join(strings.Fields(l), " ")
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// IPVSSection compares one section of kube-proxy's ipvs output (want) with
// svc2rules' --ipvs-section output (got). It returns a go-cmp diff when they
// differ, and an error for an unknown section or (iptables) unparsable text.
func IPVSSection(section, want, got string) (equal bool, diff string, err error) {
	switch section {
	case "iptables":
		return IPTables(want, got)
	case "ipvsadm", "ipset", "addresses":
		w, g := normIPVSLines(want), normIPVSLines(got)
		if cmp.Equal(w, g) {
			return true, "", nil
		}
		return false, cmp.Diff(w, g), nil
	}
	return false, "", fmt.Errorf("unknown ipvs section %q (ipvsadm, ipset, addresses or iptables)", section)
}
