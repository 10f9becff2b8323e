"""Article C on your own images: its CNN space (rtune_fashion.spaces.CNN_ARTICLE_C) searched by TPE, as Hyperas did.

Article C tuned a CNN for 48x48 grey images in 4 classes (../shared/ARTICLES.md, section C): two blocks of
convolutions (5x5, then 3x3) with batch norm and a max-pool each, two dense layers; dropout, dense units,
optimizer and batch size searched. Its dataset has no public copy here, so ``--data`` is required: a folder
with one subfolder of images per class (or ``train/`` and ``test/`` folders of them), an ``.npz`` of image
arrays, or a folder of idx files. Images are read as grey or RGB (``--color``) at the size most of them have
(``--image-size HxW`` to choose), and a stratified 1/7 is kept apart for the final test unless a test split
is given. For example, a first check of the whole path on a folder:

    python experiments/cnn_images_hyperopt.py --data path/to/images --smoke-test
"""

from rtune_fashion.cli import experiment_main

if __name__ == "__main__":
    raise SystemExit(
        experiment_main(description=__doc__, space="cnn_article_c", searcher="hyperopt", max_epochs=20, data=None)
    )
