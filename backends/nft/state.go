package nft

import (
	"fmt"
	"strings"

	"sigs.k8s.io/knftables"
)

// verb is an nft command verb of the transaction.
type verb int

const (
	verbAdd verb = iota
	verbFlush
	verbDelete
)

// state is the content of the kube-proxy table as knftables' Fake keeps it
// after running a transaction on an empty host: objects by name, rules in
// order, elements by key (the Fake appends them in insertion order; its
// Dump as printed by kube-proxy's oracle sorts them by key, so a map is
// enough here).
type state struct {
	table    *knftables.Table
	chains   map[string]*chainState
	sets     map[string]*setState
	maps     map[string]*setState
	counters map[string]*knftables.Counter

	// hint sizes the element maps of kube-proxy's shared sets and maps
	// (the number of service ports); last caches the chain of the
	// previous rule (a chain's rules come together).
	hint     int
	lastName string
	last     *chainState
}

type chainState struct {
	chain *knftables.Chain
	rules []*knftables.Rule
}

type setState struct {
	set      *knftables.Set
	mapObj   *knftables.Map
	elements map[string]*knftables.Element
}

func newState(servicePorts int) *state {
	return &state{
		hint:     servicePorts,
		chains:   make(map[string]*chainState, 3*servicePorts+64),
		sets:     map[string]*setState{},
		maps:     map[string]*setState{},
		counters: map[string]*knftables.Counter{},
	}
}

func elementKey(e *knftables.Element) string { return strings.Join(e.Key, " . ") }

// apply runs one operation the way knftables.Fake.Run does for the verbs
// kube-proxy uses. Errors mean the transaction would not load (a bug here).
func (s *state) apply(v verb, obj knftables.Object) error {
	if _, ok := obj.(*knftables.Table); !ok && s.table == nil {
		return fmt.Errorf("nft: operation before the table exists")
	}
	switch o := obj.(type) {
	case *knftables.Table:
		switch v {
		case verbAdd:
			if s.table == nil {
				s.table = o
			}
		default:
			return fmt.Errorf("nft: unsupported table operation")
		}
	case *knftables.Chain:
		c := s.chains[o.Name]
		switch v {
		case verbAdd:
			if c == nil {
				s.chains[o.Name] = &chainState{chain: o}
			}
		case verbFlush:
			if c == nil {
				return fmt.Errorf("nft: flush of missing chain %q", o.Name)
			}
			c.rules = nil
		case verbDelete:
			if c == nil {
				return fmt.Errorf("nft: delete of missing chain %q", o.Name)
			}
			delete(s.chains, o.Name)
			s.last, s.lastName = nil, ""
		}
	case *knftables.Rule:
		c := s.last
		if c == nil || o.Chain != s.lastName {
			c = s.chains[o.Chain]
			s.last, s.lastName = c, o.Chain
		}
		if c == nil || v != verbAdd {
			return fmt.Errorf("nft: rule for missing chain %q", o.Chain)
		}
		c.rules = append(c.rules, o)
	case *knftables.Set:
		return s.applyContainer(v, s.sets, o.Name, func() *setState { return &setState{set: o} })
	case *knftables.Map:
		return s.applyContainer(v, s.maps, o.Name, func() *setState { return &setState{mapObj: o} })
	case *knftables.Counter:
		switch v {
		case verbAdd:
			if s.counters[o.Name] == nil {
				s.counters[o.Name] = o
			}
		case verbDelete:
			if s.counters[o.Name] == nil {
				return fmt.Errorf("nft: delete of missing counter %q", o.Name)
			}
			delete(s.counters, o.Name)
		default:
			return fmt.Errorf("nft: unsupported counter operation")
		}
	case *knftables.Element:
		var c *setState
		if o.Set != "" {
			c = s.sets[o.Set]
		} else {
			c = s.maps[o.Map]
		}
		if c == nil {
			return fmt.Errorf("nft: element for missing set/map %q%q", o.Set, o.Map)
		}
		k := elementKey(o)
		switch v {
		case verbAdd:
			c.elements[k] = o
		case verbDelete:
			if c.elements[k] == nil {
				return fmt.Errorf("nft: delete of missing element %q", k)
			}
			delete(c.elements, k)
		default:
			return fmt.Errorf("nft: unsupported element operation")
		}
	default:
		return fmt.Errorf("nft: unsupported object %T", obj)
	}
	return nil
}

func (s *state) applyContainer(v verb, m map[string]*setState, name string, mk func() *setState) error {
	c := m[name]
	switch v {
	case verbAdd:
		if c == nil {
			c = mk()
			hint := s.hint
			if strings.HasPrefix(name, affinitySetPrefix) {
				hint = 0 // filled by the kernel, never here
			}
			c.elements = make(map[string]*knftables.Element, hint)
			m[name] = c
		}
	case verbFlush:
		if c == nil {
			return fmt.Errorf("nft: flush of missing set/map %q", name)
		}
		clear(c.elements)
	case verbDelete:
		if c == nil {
			return fmt.Errorf("nft: delete of missing set/map %q", name)
		}
		delete(m, name)
	}
	return nil
}

// entry is a map entry (sortedEntries).
type entry[V any] struct {
	k string
	v V
}

// sortedEntries is m's entries sorted by key (sort.Strings order).
func sortedEntries[V any](m map[string]V) []entry[V] {
	es := make([]entry[V], 0, len(m))
	for k, v := range m {
		es = append(es, entry[V]{k, v})
	}
	sortByKey(es, func(e entry[V]) string { return e.k })
	return es
}

// dump lists the state's operations in the order knftables' Fake.Dump()
// writes them (table; chains, sets, maps and counters by name; then each
// chain's rules in order; then each set's and map's elements), with the
// elements sorted by key, for opsText to write. tx must be an empty
// transaction of the table; it checks the operations as knftables does.
func (s *state) dump(tx *knftables.Transaction) ([]op, error) {
	if s.table == nil {
		return nil, nil
	}
	n := 1 + len(s.chains) + len(s.sets) + len(s.maps) + len(s.counters)
	for _, c := range s.chains {
		n += len(c.rules)
	}
	for _, c := range s.sets {
		n += len(c.elements)
	}
	for _, c := range s.maps {
		n += len(c.elements)
	}
	ops := make([]op, 0, n)
	add := func(obj knftables.Object) {
		tx.Add(obj)
		ops = append(ops, op{verbAdd, obj})
	}
	add(s.table)
	chains := sortedEntries(s.chains)
	sets := sortedEntries(s.sets)
	maps := sortedEntries(s.maps)
	for _, c := range chains {
		add(c.v.chain)
	}
	for _, c := range sets {
		add(c.v.set)
	}
	for _, c := range maps {
		add(c.v.mapObj)
	}
	for _, c := range sortedEntries(s.counters) {
		add(c.v)
	}
	for _, c := range chains {
		for _, r := range c.v.rules {
			add(r)
		}
	}
	for _, c := range sets {
		for _, e := range sortedEntries(c.v.elements) {
			add(e.v)
		}
	}
	for _, c := range maps {
		for _, e := range sortedEntries(c.v.elements) {
			add(e.v)
		}
	}
	if err := txError(tx, len(ops)); err != nil {
		return nil, err
	}
	return ops, nil
}
