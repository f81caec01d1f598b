"""Flex Template entry point (FLEX_TEMPLATE_PYTHON_PY_FILE): builds the pipeline from the installed
package and hands it to the DataflowRunner; see pipelines/service/flex.py."""

import logging
import sys

from pipelines.service.flex import template_main

if __name__ == "__main__":
    logging.getLogger().setLevel(logging.INFO)
    sys.exit(template_main())
