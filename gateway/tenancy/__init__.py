"""Tenancy: client keys, per-tenant limits and USD budgets (local or shared through Redis)."""
