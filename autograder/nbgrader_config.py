"""nbgrader configuration of the course: run nbgrader from this folder (`cd autograder`).

The course root is the repository: instructor notebooks come from `solutions/`, the student
release goes to `notebooks/`, and everything a class run produces (submissions, autograded
copies, feedback, the gradebook) stays under `autograder/`, which git ignores.
"""

from pathlib import Path

c = get_config()  # noqa: F821 (nbgrader provides get_config when it loads this file)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

c.CourseDirectory.course_id = "transformers-from-scratch"
c.CourseDirectory.root = str(ROOT)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.submitted_directory = "autograder/submitted"
c.CourseDirectory.autograded_directory = "autograder/autograded"
c.CourseDirectory.feedback_directory = "autograder/feedback"
c.CourseDirectory.db_url = f"sqlite:///{HERE / 'gradebook.db'}"

# Every notebook runs on the same Python kernel, whatever kernelspec a student's editor saved.
c.Execute.kernel_name = "python3"

# Seconds per cell. Under autograding no cell trains (they load the submitted checkpoint),
# so even the slowest cell, a quality check on a 2-core CPU, finishes well within this.
c.Execute.timeout = 300

# A student's notebook that prints megabytes must not swamp the gradebook or the feedback.
c.LimitOutput.max_lines = 500
c.LimitOutput.max_traceback = 50

# nbgrader scores a test cell 0 for any stderr output. These known, harmless messages
# come from libraries, not from the student's code, so they are removed before scoring.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = (
    r"Matplotlib is building the font cache"
    r"|Matplotlib created a temporary cache directory"
    r"|UserWarning: TypedStorage is deprecated"
    r"|FutureWarning: You are using `torch.load` with `weights_only=False`"
)

# Editors and Colab round trips sometimes drop a cell or its metadata: put missing graded
# cells back from the release instead of failing the whole notebook.
c.OverwriteCells.add_missing_cells = True
