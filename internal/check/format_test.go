package check

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"
)

// hostileReport holds what an attacker controls: file names and object
// names (as far as they survive validation: an invalid name is reported,
// quoted) and messages quoting input values.
func hostileReport() *Report {
	file := "evil\n::error file=x::pwned%0A\x1b[31m\u202e.yaml"
	return &Report{
		Findings: []Finding{
			{Rule: "invalid-name", Severity: Error, File: file, Line: 3, Kind: "Service", Namespace: "ns", Name: "web\"\n-A INPUT -j ACCEPT", Field: "metadata.name", Message: `invalid value "web\"\n-A INPUT -j ACCEPT": must be a DNS label`},
			{Rule: "no-ready-endpoints", Severity: Warning, File: "ok.yaml", Line: 7, Kind: "Service", Namespace: "ns", Name: "b", Field: "spec.ports[0]", Message: "none ready, 50% <b>&amp;</b>"},
			{Rule: "kind-skipped", Severity: Info, Message: "skipped 1 object(s) of kind v1/ConfigMap"},
		},
		Objects: []ObjectRef{{Kind: "Service", Namespace: "ns", Name: "b", File: "ok.yaml", Line: 1}},
		Files:   []string{file, "ok.yaml"},
	}
}

func TestFormatsParseBackAndContainNoRawInjection(t *testing.T) {
	r := hostileReport()
	for _, format := range Formats {
		t.Run(format, func(t *testing.T) {
			var b bytes.Buffer
			if err := Write(&b, format, r, true); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			for _, bad := range []string{"\x1b", "\u202e", "\n-A INPUT", "\n::error file=x"} {
				if bad == "\u202e" && (format == "json" || format == "sarif") {
					continue // JSON keeps the exact value (escaped where JSON needs it)
				}
				if strings.Contains(out, bad) {
					t.Errorf("output holds raw %q:\n%s", bad, out)
				}
			}
			switch format {
			case "json":
				var v jsonReport
				if err := json.Unmarshal(b.Bytes(), &v); err != nil {
					t.Fatal(err)
				}
				if len(v.Findings) != 3 || v.Summary.Errors != 1 || v.Summary.Warnings != 1 || v.Findings[0].Name != r.Findings[0].Name {
					t.Errorf("round trip: %+v", v)
				}
			case "sarif":
				var v sarifLog
				if err := json.Unmarshal(b.Bytes(), &v); err != nil {
					t.Fatal(err)
				}
				if v.Version != "2.1.0" || len(v.Runs) != 1 || len(v.Runs[0].Results) != 3 || len(v.Runs[0].Tool.Driver.Rules) != len(Rules) {
					t.Fatalf("sarif: %+v", v)
				}
				res := v.Runs[0].Results[0]
				if res.Level != "error" || v.Runs[0].Tool.Driver.Rules[res.RuleIndex].ID != res.RuleID {
					t.Errorf("result: %+v", res)
				}
				if u := res.Locations[0].PhysicalLocation.ArtifactLocation.URI; strings.ContainsAny(u, "\n\x1b ") {
					t.Errorf("uri not encoded: %q", u)
				}
				if v.Runs[0].Results[2].Level != "note" {
					t.Errorf("info should be a note")
				}
			case "junit":
				var v junitSuites
				if err := xml.Unmarshal(b.Bytes(), &v); err != nil {
					t.Fatal(err)
				}
				// error + warning (--fail-on-warn) fail; the info is system-out.
				if v.Failures != 2 || v.Tests != 3 {
					t.Errorf("junit: tests %d failures %d\n%s", v.Tests, v.Failures, out)
				}
			case "github":
				for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
					if !strings.HasPrefix(l, "::error ") && !strings.HasPrefix(l, "::warning ") && !strings.HasPrefix(l, "::notice ") && !strings.Contains(l, " errors") && !strings.Contains(l, " error,") {
						t.Errorf("line is not a workflow command: %q", l)
					}
				}
				if !strings.Contains(out, "::error file=evil\\x0a%3A%3Aerror file=x%3A%3Apwned%250A\\x1b[31m\\u202e.yaml,line=3,title=svc2rules invalid-name::") {
					t.Errorf("properties not escaped:\n%s", out)
				}
				if !strings.Contains(out, "::warning file=ok.yaml,line=7,title=svc2rules no-ready-endpoints::Service ns/b: spec.ports[0]: none ready, 50%25 <b>&amp;</b>") {
					t.Errorf("data not escaped:\n%s", out)
				}
			case "text":
				if n := strings.Count(out, "\n"); n != 4 {
					t.Errorf("want 3 findings and a summary, %d lines:\n%s", n, out)
				}
			}
		})
	}
	if err := Write(&bytes.Buffer{}, "yaml", r, false); err == nil {
		t.Error("unknown format: no error")
	}
}

func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		"plain ns/name":   "plain ns/name",
		"a\nb\r\tc":       `a\x0ab\x0d\x09c`,
		"bidi\u202eabc":   `bidi\u202eabc`,
		"bad\xffutf8":     `bad\xffutf8`,
		"zone-é, ok":      "zone-é, ok",
		"c1\u0085control": `c1\u0085control`,
	} {
		if got := Sanitize(in); got != want {
			t.Errorf("Sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}
