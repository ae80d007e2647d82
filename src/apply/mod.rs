//! The applier: executes a plan's steps in dependency order against live Dynatrace and the
//! targets, re-checking each step's precondition, journaling intent and outcome, under a lock
//! per environment.

pub mod lock;
