"""One date and time format everywhere (issue 18): 24-hour clock, day month year, shown in Europe/London.

Django's own en_GB formats show "6:47 p.m."; localized formats win over the DATE_FORMAT settings, so the display
formats are replaced here (settings.FORMAT_MODULE_PATH) and the rest (input formats, separators) kept. Templates
say "DATETIME_FORMAT" rather than spelling a format out.
"""

from django.conf.locale.en_GB.formats import *  # noqa: F403

DATE_FORMAT = "j M Y"  # 2 Dec 2026
TIME_FORMAT = "H:i"  # 18:47
DATETIME_FORMAT = "j M Y, H:i"  # 2 Dec 2026, 18:47
SHORT_DATE_FORMAT = "d/m/Y"
SHORT_DATETIME_FORMAT = "d/m/Y H:i"
