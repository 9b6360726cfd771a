"""Operations: pane registry (registry), leftover collection (gc), environment checks (doctor)."""
