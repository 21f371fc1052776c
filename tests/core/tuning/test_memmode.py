"""`--memory-mode preferred` writes one node per binding unless libvirt is known to take more."""

from __future__ import annotations

from vmtune.core.guest import MemNode
from vmtune.core.plan import Note, NumaTunePlan
from vmtune.core.tuning.memmode import single_node_preferred
from vmtune.cpuset import CpuSet

CELLS = (
    MemNode(cellid=0, mode="preferred", nodeset=CpuSet([2])),
    MemNode(cellid=1, mode="preferred", nodeset=CpuSet([3])),
)


def test_preferred_over_cells_binds_each_cell_and_memory_to_one_node() -> None:
    notes: list[Note] = []
    plan = single_node_preferred(
        NumaTunePlan(mode="preferred", nodeset=CpuSet([2, 3]), memnodes=CELLS), notes
    )
    assert plan.nodeset == CpuSet([2]) and plan.memnodes == CELLS
    (note,) = notes
    assert "before 9.3" in note.message and "prefers node 2" in note.message


def test_preferred_without_cells_prefers_the_first_node_with_a_warning() -> None:
    notes: list[Note] = []
    plan = single_node_preferred(NumaTunePlan(mode="preferred", nodeset=CpuSet([0, 1, 2, 3])), notes)
    assert plan.nodeset == CpuSet([0])
    assert notes[0].level == "warning" and "--memory-mode strict" in notes[0].message


def test_left_alone_for_one_node_other_modes_and_new_libvirt() -> None:
    one = NumaTunePlan(mode="preferred", nodeset=CpuSet([1]))
    wide = NumaTunePlan(mode="strict", nodeset=CpuSet([0, 1]))
    many = NumaTunePlan(mode="preferred", nodeset=CpuSet([0, 1]))
    notes: list[Note] = []
    assert single_node_preferred(one, notes) is one
    assert single_node_preferred(wide, notes) is wide
    assert single_node_preferred(many, notes, libvirt_version=(9, 3)) is many
    assert notes == []
