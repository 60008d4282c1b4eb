// Package projections turns the event log into Postgres read models: each
// projection is a Watermill handler fed by a subscriber over the store's
// global feed, with its checkpoint committed in the same transaction as its
// writes. The engine arrives with the projection-engine issue; until then
// the write side and /readyz stand alone.
package projections
