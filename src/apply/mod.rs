//! Carries out a [`Plan`](crate::plan::Plan), action by action, announcing each step.
