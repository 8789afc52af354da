"""Training critics: thin adapters onto TRL (SFT, DPO, GRPO with criticlab's rule-based
rewards) and a small step-label (PRM) trainer. Import the submodules; this package imports
nothing heavy itself."""
