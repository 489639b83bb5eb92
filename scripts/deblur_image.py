"""The Sicara port's name for ``scripts/deblur.py`` (same options, same behaviour)."""

from deblur import main  # python puts this script's folder on sys.path

if __name__ == "__main__":
    main()
