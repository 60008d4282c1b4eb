package readapi_test

import "github.com/portico-health/portico/eventstore"

func eventstoreFilter(categories ...string) eventstore.Filter {
	return eventstore.Filter{Categories: categories}
}
