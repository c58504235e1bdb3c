from solo_ossl.compare.cli import main

if __name__ == "__main__":
    main()
