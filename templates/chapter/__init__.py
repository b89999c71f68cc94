"""Chapter "Template chapter title".

The question this chapter asks, the experiment that answers it and what its claims test, in one paragraph. Until you
replace it, the experiment is the template's worked example: a logistic-regression classifier is trained on two
Gaussian classes, once per replicate, then tested on its test inputs with Gaussian noise of growing scale added; the
claims ask whether it learned the task (Z0) and whether its accuracy falls as the noise grows (Z1).

``experiment`` trains and evaluates, ``analysis`` turns the results into the claims, ``figures`` draws them.
"""

from steerlib.chapters.template_part.template_chapter.analysis import SPECS, claims, extra, statistics
from steerlib.chapters.template_part.template_chapter.experiment import PROFILES, Results, Settings, jobs, run
from steerlib.core.chapter import Chapter

CHAPTER = Chapter.define(__name__, name="template-chapter", part="template_part", title="Template chapter title")
