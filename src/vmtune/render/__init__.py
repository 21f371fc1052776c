"""Rich tables, trees and maps; no decisions."""
