package check

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Formats are the values of check -o.
var Formats = []string{"text", "json", "sarif", "junit", "github"}

// Write renders the report in a format.
func Write(w io.Writer, format string, r *Report, failOnWarn bool) error {
	switch format {
	case "text", "":
		return WriteText(w, r)
	case "json":
		return WriteJSON(w, r)
	case "sarif":
		return WriteSARIF(w, r)
	case "junit":
		return WriteJUnit(w, r, failOnWarn)
	case "github":
		return WriteGitHub(w, r)
	}
	return fmt.Errorf("unknown output format %q (%s)", format, strings.Join(Formats, ", "))
}

// Sanitize makes a string from the input or the file system safe to print
// on a line of its own: control characters, invalid UTF-8 and Unicode
// format characters (bidirectional overrides) are escaped as \xNN / \uNNNN.
func Sanitize(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || r < 0x20 || r == 0x7f || unicode.Is(unicode.Cf, r) || (r >= 0x80 && r < 0xa0) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unicode.Is(unicode.Cf, r) || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func location(f Finding) string {
	if f.File == "" {
		return ""
	}
	if f.Line > 0 {
		return fmt.Sprintf("%s:%d", Sanitize(f.File), f.Line)
	}
	return Sanitize(f.File)
}

// Summary is "2 errors, 1 warning, 0 infos in 12 objects".
func (r *Report) Summary() string {
	plural := func(n int, s string) string {
		if n == 1 {
			return fmt.Sprintf("%d %s", n, s)
		}
		return fmt.Sprintf("%d %ss", n, s)
	}
	return fmt.Sprintf("%s, %s, %s in %s (%s)", plural(r.Count(Error), "error"), plural(r.Count(Warning), "warning"),
		plural(r.Count(Info), "info"), plural(len(r.Objects), "object"), plural(len(r.Files), "file"))
}

// message is the finding's text: "Kind ns/name: field: message".
func message(f Finding) string {
	var parts []string
	if o := f.Object(); o != "" {
		parts = append(parts, o)
	}
	if f.Field != "" {
		parts = append(parts, f.Field)
	}
	parts = append(parts, f.Message)
	return Sanitize(strings.Join(parts, ": "))
}

// WriteText writes one line per finding, "file:line: severity: object: field:
// message [rule]", then a summary.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	for _, f := range r.Findings {
		if loc := location(f); loc != "" {
			b.WriteString(loc)
			b.WriteString(": ")
		}
		fmt.Fprintf(&b, "%s: %s [%s]\n", f.Severity, message(f), f.Rule)
	}
	b.WriteString(r.Summary())
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

type jsonFinding struct {
	Rule      string `json:"rule"`
	Severity  string `json:"severity"`
	File      string `json:"file,omitempty"`
	Line      int    `json:"line,omitempty"`
	Kind      string `json:"kind,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	Field     string `json:"field,omitempty"`
	Message   string `json:"message"`
}

type jsonReport struct {
	Findings []jsonFinding `json:"findings"`
	Summary  struct {
		Errors   int `json:"errors"`
		Warnings int `json:"warnings"`
		Infos    int `json:"infos"`
		Objects  int `json:"objects"`
		Files    int `json:"files"`
	} `json:"summary"`
}

// WriteJSON writes {"findings": [...], "summary": {...}}.
func WriteJSON(w io.Writer, r *Report) error {
	out := jsonReport{Findings: []jsonFinding{}}
	for _, f := range r.Findings {
		out.Findings = append(out.Findings, jsonFinding{f.Rule, f.Severity.String(), f.File, f.Line, f.Kind, f.Namespace, f.Name, f.Field, f.Message})
	}
	out.Summary.Errors, out.Summary.Warnings, out.Summary.Infos = r.Count(Error), r.Count(Warning), r.Count(Info)
	out.Summary.Objects, out.Summary.Files = len(r.Objects), len(r.Files)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// SARIF 2.1.0, the subset code scanning reads.
type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifRule struct {
	ID                   string    `json:"id"`
	Name                 string    `json:"name"`
	ShortDescription     sarifText `json:"shortDescription"`
	FullDescription      sarifText `json:"fullDescription"`
	Help                 sarifText `json:"help"`
	DefaultConfiguration struct {
		Level string `json:"level"`
	} `json:"defaultConfiguration"`
}

type sarifResult struct {
	RuleID    string          `json:"ruleId"`
	RuleIndex int             `json:"ruleIndex"`
	Level     string          `json:"level"`
	Message   sarifText       `json:"message"`
	Locations []sarifLocation `json:"locations,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation *sarifPhysical `json:"physicalLocation,omitempty"`
	LogicalLocations []sarifLogical `json:"logicalLocations,omitempty"`
}

type sarifPhysical struct {
	ArtifactLocation struct {
		URI string `json:"uri"`
	} `json:"artifactLocation"`
	Region *struct {
		StartLine int `json:"startLine"`
	} `json:"region,omitempty"`
}

type sarifLogical struct {
	Name               string `json:"name"`
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind"`
}

func sarifLevel(s Severity) string {
	switch s {
	case Error:
		return "error"
	case Warning:
		return "warning"
	}
	return "note"
}

// sarifURI is a file path as a relative URI reference (forward slashes,
// percent-encoded where needed).
func sarifURI(p string) string {
	p = filepath.ToSlash(p)
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~/!$&'()*+,;=:@", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// WriteSARIF writes a SARIF 2.1.0 log (GitHub code scanning, GitLab, Azure DevOps).
func WriteSARIF(w io.Writer, r *Report) error {
	run := sarifRun{Tool: sarifTool{Driver: sarifDriver{Name: "svc2rules", InformationURI: "https://github.com/svc2rules/svc2rules/blob/main/docs/check.md"}}, Results: []sarifResult{}}
	index := map[string]int{}
	for i, rule := range Rules {
		sr := sarifRule{ID: rule.ID, Name: rule.ID, ShortDescription: sarifText{rule.Title}, FullDescription: sarifText{rule.Help}, Help: sarifText{rule.Help}}
		sr.DefaultConfiguration.Level = sarifLevel(rule.Severity)
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sr)
		index[rule.ID] = i
	}
	for _, f := range r.Findings {
		res := sarifResult{RuleID: f.Rule, RuleIndex: index[f.Rule], Level: sarifLevel(f.Severity), Message: sarifText{message(f)}}
		var loc sarifLocation
		if f.File != "" && f.File != "<stdin>" {
			loc.PhysicalLocation = &sarifPhysical{}
			loc.PhysicalLocation.ArtifactLocation.URI = sarifURI(f.File)
			if f.Line > 0 {
				loc.PhysicalLocation.Region = &struct {
					StartLine int `json:"startLine"`
				}{f.Line}
			}
		}
		if o := f.Object(); o != "" && f.Kind != "" {
			loc.LogicalLocations = []sarifLogical{{Name: f.Name, FullyQualifiedName: o, Kind: "object"}}
		}
		if loc.PhysicalLocation != nil || loc.LogicalLocations != nil {
			res.Locations = []sarifLocation{loc}
		}
		run.Results = append(run.Results, res)
	}
	log := sarifLog{Schema: "https://json.schemastore.org/sarif-2.1.0.json", Version: "2.1.0", Runs: []sarifRun{run}}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(log)
}

// JUnit XML, as CI systems read it: one test case per object, a failure
// per error (and per warning with --fail-on-warn), the rest as system-out.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string         `xml:"name,attr"`
	Classname string         `xml:"classname,attr"`
	Failures  []junitFailure `xml:"failure"`
	SystemOut string         `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes JUnit XML: a suite per file, a case per object (and one
// per document that could not be read).
func WriteJUnit(w io.Writer, r *Report, failOnWarn bool) error {
	type caseKey struct{ file, object string }
	cases := map[caseKey]*junitCase{}
	var order []caseKey
	get := func(file, object string) *junitCase {
		k := caseKey{file, object}
		if c, ok := cases[k]; ok {
			return c
		}
		c := &junitCase{Name: Sanitize(object), Classname: Sanitize(file)}
		cases[k] = c
		order = append(order, k)
		return c
	}
	for _, o := range r.Objects {
		get(o.File, o.Object())
	}
	for _, f := range r.Findings {
		obj := f.Object()
		if obj == "" {
			obj = "document"
			if f.Line > 0 {
				obj = fmt.Sprintf("document at line %d", f.Line)
			}
		}
		c := get(f.File, obj)
		line := fmt.Sprintf("%s: %s [%s]", f.Severity, message(f), f.Rule)
		if loc := location(f); loc != "" {
			line = loc + ": " + line
		}
		if f.Severity == Error || (failOnWarn && f.Severity == Warning) {
			c.Failures = append(c.Failures, junitFailure{Message: message(f), Type: f.Rule, Text: line})
		} else {
			if c.SystemOut != "" {
				c.SystemOut += "\n"
			}
			c.SystemOut += line
		}
	}
	suites := map[string]*junitSuite{}
	var names []string
	for _, k := range order {
		s := suites[k.file]
		if s == nil {
			s = &junitSuite{Name: Sanitize(k.file)}
			suites[k.file] = s
			names = append(names, k.file)
		}
		c := cases[k]
		s.Cases = append(s.Cases, *c)
		s.Tests++
		if len(c.Failures) > 0 {
			s.Failures++
		}
	}
	sort.Strings(names)
	out := junitSuites{Name: "svc2rules check"}
	for _, n := range names {
		s := suites[n]
		out.Suites = append(out.Suites, *s)
		out.Tests += s.Tests
		out.Failures += s.Failures
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// githubEscapeData and githubEscapeProperty are the escapes of GitHub
// Actions workflow commands (toolkit/packages/core/src/command.ts), so no
// finding can end its command early or start another.
func githubEscapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func githubEscapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// WriteGitHub writes GitHub Actions workflow commands (::error, ::warning,
// ::notice) that annotate the pull request's files, then the summary.
func WriteGitHub(w io.Writer, r *Report) error {
	var b strings.Builder
	for _, f := range r.Findings {
		cmd := "notice"
		switch f.Severity {
		case Error:
			cmd = "error"
		case Warning:
			cmd = "warning"
		}
		var props []string
		if f.File != "" && f.File != "<stdin>" {
			props = append(props, "file="+githubEscapeProperty(Sanitize(filepath.ToSlash(f.File))))
			if f.Line > 0 {
				props = append(props, fmt.Sprintf("line=%d", f.Line))
			}
		}
		props = append(props, "title="+githubEscapeProperty("svc2rules "+f.Rule))
		fmt.Fprintf(&b, "::%s %s::%s\n", cmd, strings.Join(props, ","), githubEscapeData(message(f)))
	}
	b.WriteString(r.Summary())
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}
