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
// Dump as printed by kube-proxy's oracle sorts them by key, so an index by
// key is enough here). Objects are also listed in creation order, so that
// dump sorts slices rather than walking maps.
type state struct {
	table    *knftables.Table
	chains   map[string]*chainState
	sets     map[string]*setState
	maps     map[string]*setState
	counters map[string]*knftables.Counter

	// chainList, setList and mapList hold every chain, set and map ever
	// created, in order; deleted ones are marked gone.
	chainList        []*chainState
	setList, mapList []*setState

	// hint sizes the element index of kube-proxy's shared sets and maps
	// (the number of service ports); last caches the chain of the
	// previous chain or rule operation (a chain is added, flushed and
	// filled in a row).
	hint     int
	lastName string
	last     *chainState
}

type chainState struct {
	chain *knftables.Chain
	rules []*knftables.Rule
	gone  bool
}

type setState struct {
	set    *knftables.Set
	mapObj *knftables.Map
	gone   bool
	// elems are the elements in insertion order (a deleted one has a nil
	// element), index their positions by key; both made at the first
	// element (the per-endpoint affinity sets never get one).
	elems []elemEntry
	index map[string]int
}

type elemEntry struct {
	key string
	e   *knftables.Element
}

func newState(servicePorts int) *state {
	return &state{
		hint:      servicePorts,
		chains:    make(map[string]*chainState, 3*servicePorts+64),
		chainList: make([]*chainState, 0, 3*servicePorts+64),
		sets:      map[string]*setState{},
		maps:      map[string]*setState{},
		counters:  map[string]*knftables.Counter{},
	}
}

func elementKey(e *knftables.Element) string { return strings.Join(e.Key, " . ") }

// chain finds a chain by name, through the one-entry cache.
func (s *state) chain(name string) *chainState {
	if s.last != nil && s.lastName == name {
		return s.last
	}
	c := s.chains[name]
	if c != nil {
		s.last, s.lastName = c, name
	}
	return c
}

// apply runs one operation the way knftables.Fake.Run does for the verbs
// kube-proxy uses. key is an element's key as elementKey writes it, when
// the caller has it ("" otherwise). Errors mean the transaction would not
// load (a bug here).
func (s *state) apply(v verb, obj knftables.Object, key string) error {
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
		c := s.chain(o.Name)
		switch v {
		case verbAdd:
			if c == nil {
				c = &chainState{chain: o}
				s.chains[o.Name] = c
				s.chainList = append(s.chainList, c)
				s.last, s.lastName = c, o.Name
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
			c.gone = true
			delete(s.chains, o.Name)
			s.last, s.lastName = nil, ""
		}
	case *knftables.Rule:
		c := s.chain(o.Chain)
		if c == nil || v != verbAdd {
			return fmt.Errorf("nft: rule for missing chain %q", o.Chain)
		}
		c.rules = append(c.rules, o)
	case *knftables.Set:
		return s.applyContainer(v, s.sets, &s.setList, o.Name, func() *setState { return &setState{set: o} })
	case *knftables.Map:
		return s.applyContainer(v, s.maps, &s.mapList, o.Name, func() *setState { return &setState{mapObj: o} })
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
		if key == "" {
			key = elementKey(o)
		}
		switch v {
		case verbAdd:
			if c.index == nil {
				c.index = make(map[string]int, s.hint)
				c.elems = make([]elemEntry, 0, s.hint)
			}
			if i, ok := c.index[key]; ok {
				c.elems[i].e = o
			} else {
				c.index[key] = len(c.elems)
				c.elems = append(c.elems, elemEntry{key, o})
			}
		case verbDelete:
			i, ok := c.index[key]
			if !ok {
				return fmt.Errorf("nft: delete of missing element %q", key)
			}
			c.elems[i].e = nil
			delete(c.index, key)
		default:
			return fmt.Errorf("nft: unsupported element operation")
		}
	default:
		return fmt.Errorf("nft: unsupported object %T", obj)
	}
	return nil
}

func (s *state) applyContainer(v verb, m map[string]*setState, list *[]*setState, name string, mk func() *setState) error {
	c := m[name]
	switch v {
	case verbAdd:
		if c == nil {
			c = mk()
			m[name] = c
			*list = append(*list, c)
		}
	case verbFlush:
		if c == nil {
			return fmt.Errorf("nft: flush of missing set/map %q", name)
		}
		c.elems, c.index = nil, nil
	case verbDelete:
		if c == nil {
			return fmt.Errorf("nft: delete of missing set/map %q", name)
		}
		c.gone = true
		delete(m, name)
	}
	return nil
}

// validateChunk is the number of operations per checking transaction of
// the dump view: knftables keeps every operation it checks, and a list the
// size of the table would only be garbage.
const validateChunk = 4096

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
// elements sorted by key, for opsText to write.
func (s *state) dump() []op {
	if s.table == nil {
		return nil
	}
	chains := live(s.chainList, func(c *chainState) bool { return !c.gone })
	sets := live(s.setList, func(c *setState) bool { return !c.gone })
	maps := live(s.mapList, func(c *setState) bool { return !c.gone })
	sortByKey(chains, func(c *chainState) string { return c.chain.Name })
	sortByKey(sets, func(c *setState) string { return c.set.Name })
	sortByKey(maps, func(c *setState) string { return c.mapObj.Name })
	n := 1 + len(chains) + len(sets) + len(maps) + len(s.counters)
	for _, c := range chains {
		n += len(c.rules)
	}
	for _, c := range sets {
		n += len(c.index)
	}
	for _, c := range maps {
		n += len(c.index)
	}
	ops := make([]op, 0, n)
	add := func(obj knftables.Object) { ops = append(ops, op{verb: verbAdd, obj: obj}) }
	add(s.table)
	for _, c := range chains {
		add(c.chain)
	}
	for _, c := range sets {
		add(c.set)
	}
	for _, c := range maps {
		add(c.mapObj)
	}
	for _, c := range sortedEntries(s.counters) {
		add(c.v)
	}
	for _, c := range chains {
		for _, r := range c.rules {
			add(r)
		}
	}
	for _, list := range [][]*setState{sets, maps} {
		for _, c := range list {
			elems := live(c.elems, func(e elemEntry) bool { return e.e != nil })
			sortByKey(elems, func(e elemEntry) string { return e.key })
			for _, e := range elems {
				add(e.e)
			}
		}
	}
	return ops
}

// live is the elements of xs that keep returns true for, in order.
func live[T any](xs []T, keep func(T) bool) []T {
	out := make([]T, 0, len(xs))
	for _, x := range xs {
		if keep(x) {
			out = append(out, x)
		}
	}
	return out
}
