"""Grading a class: isolated, parallel autograding on nbgrader that survives hostile submissions.

``python -m mytorch.course grade ASSIGNMENT --submissions DIR_OR_ZIP`` runs `run.grade_class`,
in these steps:

1. intake: a folder per student, or an LMS zip through ``nbgrader zip_collect`` (`intake`);
2. a pre-flight check and repair of every notebook against the release (`preflight`), and a
   static scan of the student's code (`scan`);
3. ``nbgrader autograde`` of each submission in a throwaway course, by parallel workers
   (`worker`) whose kernels run in a sandbox (`isolation`, ``sandbox.py``, `kernel`);
4. a merge of the scores into the real gradebook by the parent process only (`gradebook`);
5. feedback without hidden tests (`feedback`) and the instructor's report (`report`).
"""
